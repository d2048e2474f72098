"""Head-pose ground truth: sample faces re-posed through a textured 3D mesh, each estimator's error per angle.

    .venv/bin/python bench/pose_truth.py [--out bench/out/pose_truth.txt]

Each frontal sample photo's face (and four near-frontal frames of the sample clip) is meshed (FaceMesh, 468 3D points), moved into the canonical face's frame
(its own small pose removed), textured from the photo and rendered (painter's algorithm, back faces culled,
orthographic) at known yaw -75..75 and pitch -30..30 in 15 degree steps, and at roll -20/+20, on a grey
background. Every render goes through each estimator:

- ``mesh fit``: the canonical face fitted to the mesh in 3D; ``mesh fit, corrected``: what faceset stores
- ``68 pnp (mesh)``: solvePnP of the 68 points derived from the same mesh against the 68-point mean face
- ``68 pnp (dlib)``: dlib HOG + 68-point predictor + the same solvePnP (the dlib backend), where HOG finds it
- ``keypoints``: BlazeFace's 6 keypoints (what a face whose mesh fails gets)

Printed per estimator and angle: mean absolute error, the least-squares slope of estimate on truth (1.0 is
calibrated; the yaw "scale question"), the bias at 0, and how many renders it measured, on two halves of the
photos. The corrections in curate/core/pose.py are fitted on real labelled faces (bench/pose_fit.py), not
on these renders: they are a second check, mostly past 60 degrees where real labels are few.
The renders are a face mask without ears or hair: the numbers say how the estimators scale, not how often a
detector finds real profiles (the extraction bench measures that on real video).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from curate.analysis.registry import create_analyzer
from curate.analysis.protocols import largest_face
from curate.core.mesh import canonical_face, fit_canonical, frontalise, mesh_to_68
from curate.core.pose import (
    Pose,
    estimate_pose,
    keypoint_pose_raw,
    mesh_pose_raw,
    pose_from_keypoints,
    pose_from_mesh,
    rotation_from_pose,
    solve_pose,
)
from curate.core.media import iter_video, load_image
from report import emit  # bench/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ["obama.jpg", "biden.jpg", "alex-lacamoire.png", "lin-manuel-miranda.png", "obama_small.jpg", "32bit.png"]
CLIP_FRAMES = [92, 148, 168, 184]  # near-frontal frames of the sample clip (its lead singer)
CANVAS, FACE_PX = 400, 170
YAWS = range(-75, 76, 15)
PITCHES = range(-30, 31, 15)
ANGLES = ("yaw", "pitch", "roll")
ESTIMATORS = ("mesh fit", "mesh fit, corrected", "mesh pnp", "68 pnp (mesh)", "68 pnp (dlib)", "keypoints",
              "keypoints, corrected")


def textured_face(rgb: np.ndarray, analyzer) -> tuple[np.ndarray, np.ndarray] | None:  # noqa: ANN001
    """(3D vertices in the canonical frame, their texture coordinates in the photo) of the largest face."""
    faces = [f for f in analyzer.analyze(rgb) if f.mesh is not None]
    if not faces:
        return None
    face = largest_face(faces)
    return frontalise(face.mesh, fit_canonical(face.mesh)), face.mesh[:, :2]


def render(rgb: np.ndarray, shape: np.ndarray, uv: np.ndarray, pose: Pose) -> np.ndarray:
    """The textured mesh turned to ``pose`` (orthographic), on a grey canvas."""
    pts = shape @ rotation_from_pose(pose).T
    scale = FACE_PX / float(np.ptp(shape[:, 0]))
    xy = (pts[:, :2] - shape[:, :2].mean(0)) * scale + CANVAS / 2
    depth = pts[:, 2]
    out = np.full((CANVAS, CANVAS, 3), 110, np.uint8)
    tris = canonical_face()["triangles"]
    order = np.argsort(-depth[tris].mean(axis=1))  # far first
    for t in tris[order]:
        dst = xy[t].astype(np.float32)
        e1, e2 = dst[1] - dst[0], dst[2] - dst[0]
        if e1[0] * e2[1] - e1[1] * e2[0] >= 0:  # back face (the mesh winds counter-clockwise)
            continue
        x0, y0 = np.floor(dst.min(0)).astype(int)
        x1, y1 = np.ceil(dst.max(0)).astype(int) + 1
        if x1 <= x0 or y1 <= y0:
            continue
        src = uv[t].astype(np.float32)
        m = cv2.getAffineTransform(src, dst - np.array([x0, y0], np.float32))
        patch = cv2.warpAffine(rgb, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(mask, np.round(dst - [x0, y0]).astype(np.int32), 1, lineType=cv2.LINE_8)
        region = out[y0:y1, x0:x1]
        region[mask > 0] = patch[: region.shape[0], : region.shape[1]][mask[: region.shape[0], : region.shape[1]] > 0]
    return out


def estimates(rgb: np.ndarray, mp, dl) -> dict[str, Pose]:  # noqa: ANN001
    """Each estimator's pose of the (single) face in a render; missing when it finds none."""
    out = {}
    dets = mp.detector.detect(rgb)
    if dets:
        det = max(dets, key=lambda d: d.score)
        found = mp.locate(rgb, det)
        if found.mesh is not None:
            out["mesh fit"] = mesh_pose_raw(found.mesh)
            out["mesh fit, corrected"] = pose_from_mesh(found.mesh)
            out["68 pnp (mesh)"] = estimate_pose(mesh_to_68(found.mesh))
            out["mesh pnp"] = pose_from_mesh_2d(found.mesh)
        out["keypoints"] = keypoint_pose_raw(np.asarray(det.keypoints))
        out["keypoints, corrected"] = pose_from_keypoints(np.asarray(det.keypoints), det.bbox)
    dets = dl.detector.detect(rgb)
    if dets:
        out["68 pnp (dlib)"] = estimate_pose(dl.landmarker.landmarks(rgb, max(dets, key=lambda d: d.score)))
    return out


def pose_from_mesh_2d(mesh: np.ndarray) -> Pose:
    """solvePnP of the mesh's 2D points (the fit's stable ones) against the canonical face: no mesh depth."""
    canon = canonical_face()
    ids = canon["fit_ids"]
    return solve_pose(mesh[ids, :2], canon["vertices"][ids])


def summary(rows: list[tuple[Pose, dict[str, Pose], str]], part: str) -> list[str]:
    """Per estimator and angle: MAE, slope, bias, count over the renders of one half."""
    lines = [f"-- {part} half: renders {sum(1 for r in rows if r[2] == part)}",
             f"{'estimator':<22}{'angle':<7}{'MAE':>7}{'slope':>7}{'bias':>7}{'n':>5}   MAE per |truth| 0 / 15 / 30 / 45 / 60 / 75"]
    for name in ESTIMATORS:
        for k, angle in enumerate(ANGLES):
            pairs = [(t[k], e[name][k]) for t, e, p in rows if p == part and name in e]
            if angle == "roll":
                pairs = [(t, e) for t, e in pairs]
            if not pairs:
                lines.append(f"{name:<22}{angle:<7}{'-':>7}")
                continue
            truth, est = np.array(pairs).T
            err = np.abs(est - truth)
            slope, bias = np.polyfit(truth, est, 1) if np.ptp(truth) > 0 else (float("nan"), float(np.mean(est)))
            buckets = " / ".join(
                f"{err[np.abs(np.abs(truth) - b) < 1].mean():.1f}" if np.any(np.abs(np.abs(truth) - b) < 1) else "-"
                for b in (0, 15, 30, 45, 60, 75))
            lines.append(f"{name:<22}{angle:<7}{err.mean():7.1f}{slope:7.2f}{bias:7.1f}{len(pairs):5d}   {buckets}")
    return lines


def real_faces_check(mp, dl) -> list[str]:  # noqa: ANN001
    """On the real clip: the mediapipe yaw (raw and corrected) beside dlib's 68-point yaw on the same faces."""
    clip = ROOT / "datasets" / "samples" / "short_hamilton_clip.mp4"
    pairs = []
    for _, rgb in iter_video(clip, every=2):
        meshes = [f.mesh for f in mp.analyze(rgb) if f.mesh is not None]
        for det in dl.detector.detect(rgb):
            pts = dl.landmarker.landmarks(rgb, det)
            for mesh in meshes:
                if np.linalg.norm(mesh[:, :2].mean(0) - pts.mean(0)) < 0.2 * np.ptp(pts[:, 0]):
                    pairs.append((estimate_pose(pts).yaw, mesh_pose_raw(mesh).yaw, pose_from_mesh(mesh).yaw))
    a = np.array(pairs).reshape(-1, 3)
    lines = [f"-- real clip faces found by both (every 2nd frame, {len(a)} faces): mean |yaw| per dlib |yaw| bin",
             f"{'dlib |yaw|':<12}{'n':>4}{'dlib':>8}{'mesh raw':>10}{'mesh cor':>10}"]
    for lo, hi in ((0, 10), (10, 20), (20, 30), (30, 40), (40, 60)):
        sel = (np.abs(a[:, 0]) >= lo) & (np.abs(a[:, 0]) < hi)
        if sel.any():
            m = np.abs(a[sel]).mean(axis=0)
            lines.append(f"{f'{lo}-{hi}':<12}{int(sel.sum()):>4}{m[0]:8.1f}{m[1]:10.1f}{m[2]:10.1f}")
    return lines


def sources() -> list[tuple[str, np.ndarray]]:
    """The faces to re-pose: the sample photos, then near-frontal frames of the sample clip."""
    out = [(name, load_image(ROOT / "datasets" / "samples" / name)) for name in PHOTOS]
    clip = ROOT / "datasets" / "samples" / "short_hamilton_clip.mp4"
    out += [(f"{clip.name}#{i}", rgb) for i, rgb in iter_video(clip) if i in CLIP_FRAMES]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "pose_truth.txt")
    parser.add_argument("--sheet", type=Path, default=ROOT / "bench" / "out" / "pose_truth_renders.png")
    args = parser.parse_args()
    mp, dl = create_analyzer("mediapipe"), create_analyzer("dlib")
    poses = [Pose(y, p, 0.0) for p in PITCHES for y in YAWS] + [Pose(0.0, 0.0, r) for r in (-20.0, 20.0)]
    rows, sheet = [], []
    for i, (name, rgb) in enumerate(sources()):
        face = textured_face(rgb, mp)
        if face is None:
            print(f"no mesh on {name}")
            continue
        part = "fit" if i % 2 == 0 else "check"
        for pose in poses:
            img = render(rgb, *face, pose)
            rows.append((pose, estimates(img, mp, dl), part))
            if i == 0 and pose.pitch == 0 and pose.roll == 0:
                sheet.append(cv2.resize(img, (200, 200), interpolation=cv2.INTER_AREA))
    lines = ["Pose ground truth: renders of the sample photos' faces at known angles (degrees)."]
    for part in ("fit", "check"):
        lines += summary(rows, part)
    lines += real_faces_check(mp, dl)
    emit(lines, args.out)
    if sheet:
        cv2.imwrite(str(args.sheet), cv2.cvtColor(np.hstack(sheet), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
