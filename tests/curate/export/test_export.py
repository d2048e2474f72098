"""Balanced export and the faceswap / DeepFaceLab round trips, safe loading and path checks."""
from __future__ import annotations

import ast
import json
import pickle
import struct
import zlib
from typing import Any

import numpy as np
import pytest
from PIL import Image

from curate.export.select import balanced_selection, face_quality, pose_bins


def read_png_meta(data: bytes) -> dict[str, Any] | None:
    """The 'faceswap' iTXt header of face PNG bytes (ast.literal_eval, never eval), or None: checks what the
    faceswap writer embeds (faceswap reads it with its own code)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG")
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"iTXt" and body.startswith(b"faceswap\0"):
            text = body[len(b"faceswap") + 5:].decode("utf-8", errors="replace")
            try:
                meta = ast.literal_eval(text)
            except (ValueError, SyntaxError) as exc:
                raise ValueError(f"faceswap PNG header is not plain data ({exc})") from None
            if not isinstance(meta, dict):
                raise ValueError("faceswap PNG header is not a dict")
            return meta
        if kind == b"IDAT":
            return None
        pos += 12 + length
    return None


def test_even_selection_spreads_over_bins_and_is_deterministic():
    bins = np.r_[np.zeros(90, int), np.ones(5, int), np.full(5, 2)]
    quality = np.arange(100, dtype=float)
    chosen = balanced_selection(bins, quality, 15, seed=3)
    assert np.bincount(bins[chosen]).tolist() == [5, 5, 5]
    assert chosen.tolist() == balanced_selection(bins, quality, 15, seed=3).tolist()
    assert set(chosen[bins[chosen] == 0]) == set(range(85, 90))  # the best of the big bin


def test_faces_with_guessed_landmarks_rank_after_real_ones_but_before_wrong_identities():
    q = face_quality(np.array([10.0, 500.0, 500.0, 500.0]), identity_ok=[True, True, True, False],
                     dup_keep=[True, True, False, True], landmarks_ok=[True, False, True, True])
    assert list(np.argsort(-q)) == [0, 1, 2, 3]


def test_match_follows_the_other_subsets_coverage():
    rng = np.random.default_rng(0)
    yaw_a = np.r_[rng.uniform(-8, 8, 180), rng.uniform(30, 50, 10), rng.uniform(-50, -30, 10)]  # mostly frontal
    yaw_b = np.r_[rng.uniform(-8, 8, 50), rng.uniform(30, 50, 60), rng.uniform(-50, -30, 60)]  # many profiles
    bins_a, bins_b = pose_bins(yaw_a, np.zeros(200)), pose_bins(yaw_b, np.zeros(170))
    n = 40
    matched = balanced_selection(bins_a, np.zeros(200), n, seed=1, target=bins_b)
    random = np.random.default_rng(1).choice(200, n, replace=False)
    profiles = lambda idx: int((np.abs(yaw_a[idx]) > 25).sum())
    print(f"A profiles in {n}: --match B {profiles(matched)}, random {profiles(random)}")
    assert len(matched) == n and profiles(matched) == 20 > profiles(random)


def test_folder_export_manifest_and_plot(faces_dataset, tmp_path):
    from typer.testing import CliRunner

    from faceset.cli import app

    out = tmp_path / "A"
    result = CliRunner().invoke(app, ["export", faces_dataset, "--subset", "A", "--out", str(out), "--n", "8",
                                      "--match", "B", "--size", "128"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n"] == 8 and len({f["sample_id"] for f in manifest["faces"]}) == 8
    assert manifest["alignment"] == {"coverage": 0.75, "backend": "mediapipe"}
    for face in manifest["faces"]:
        assert Image.open(out / face["file"]).size == (128, 128)
        marks = np.asarray(face["landmarks"])  # the jaw of a side view may reach past the crop; the inner face not
        assert marks.shape == (68, 2) and 0 < marks[17:].min() and marks[17:].max() < 128, marks
    assert (out / "manifest.csv").read_text().count("\n") == 9
    assert Image.open(out / "distribution.png").size[0] > 500
    again = tmp_path / "again"
    CliRunner().invoke(app, ["export", faces_dataset, "--subset", "A", "--out", str(again), "--n", "8", "--match", "B", "--size", "128"])
    assert json.loads((again / "manifest.json").read_text())["faces"] == manifest["faces"]


def _source_landmarks(ds):
    return {(s.source.rsplit("/", 1)[-1], s.face_index): np.asarray(s.source_landmarks) for s in ds}


def test_faceswap_round_trip(photos_dataset, samples, tmp_path):
    import fiftyone as fo

    from curate.export.balanced import export_faces
    from curate.interop.faceswap.codec import read_alignments
    from curate.interop.importing import import_faceswap

    out = tmp_path / "fs"
    result = export_faces(photos_dataset, "B", out, fmt="faceswap", progress=False)
    frames, meta = read_alignments(out / "alignments.fsa")
    assert meta["version"] == 2.4 and sum(len(f) for f in frames.values()) == result.count == 4
    pngs = sorted(out.glob("*.png"))
    header = read_png_meta(pngs[0].read_bytes())
    assert header["source"]["source_filename"] in frames and len(header["alignments"]["landmarks_xy"]) == 68
    back = f"{photos_dataset}-fs"
    summary = import_faceswap(back, "B", out / "alignments.fsa", samples)
    assert summary.added == 4 and not summary.skipped
    before, after = _source_landmarks(fo.load_dataset(photos_dataset)), _source_landmarks(fo.load_dataset(back))
    assert before.keys() == after.keys()
    assert max(np.abs(before[k] - after[k]).max() for k in before) < 0.5
    assert import_faceswap(back, "B", out / "alignments.fsa", samples).added == 0  # re-run: no duplicates


def test_dfl_round_trip(photos_dataset, samples, tmp_path):
    import fiftyone as fo

    from curate.export.balanced import export_faces
    from curate.interop.dfl.codec import read_dfl_meta
    from curate.interop.importing import import_dfl

    out = tmp_path / "dfl"
    export_faces(photos_dataset, "B", out, fmt="dfl", size=256, progress=False)
    jpgs = sorted(out.glob("*.jpg"))
    meta = read_dfl_meta(jpgs[0].read_bytes())
    assert {"landmarks", "source_landmarks", "source_rect", "source_filename", "image_to_face_mat", "face_type"} <= meta.keys()
    assert Image.open(jpgs[0]).size == (256, 256)  # still a valid JPEG
    for frames in (samples, None):  # from the source frames, and from the aligned JPGs alone
        back = f"{photos_dataset}-dfl{frames is None}"
        summary = import_dfl(back, "B", out, frames)
        assert summary.added == 4 and not summary.skipped
        after = [np.asarray(s.source_landmarks) for s in fo.load_dataset(back)]
        before = _source_landmarks(fo.load_dataset(photos_dataset))
        for pts in after:
            assert min(np.abs(pts - b).max() for b in before.values()) < 0.5
        ds = fo.load_dataset(back)
        sizes = ds.values("frame_size") if ds.has_sample_field("frame_size") else [None] * len(ds)
        if frames is None:  # the source frame is not at hand: its size is unknown, not the crop's
            assert sizes == [None] * 4
        else:
            assert all(s is not None and s[0] > 256 for s in sizes)
        export_faces(back, "B", tmp_path / f"again{frames is None}", fmt="faceswap", progress=False)  # still exports


class _RunsCode:
    def __reduce__(self):
        import os
        return (os.system, ("touch /tmp/faceset-pwned",))


def test_malicious_and_malformed_files_are_refused(photos_dataset, samples, tmp_path, capsys):
    import fiftyone as fo

    from curate.interop.dfl.codec import write_dfl_meta
    from curate.interop.importing import import_dfl, import_faceswap
    from curate.interop.safe_pickle import FormatError, UnsafePickleError

    evil = tmp_path / "evil.fsa"
    evil.write_bytes(zlib.compress(pickle.dumps({"__meta__": {"version": 2.4}, "__data__": {"obama.jpg": _RunsCode()}})))
    count = len(fo.load_dataset(photos_dataset))
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        import_faceswap(photos_dataset, "B", evil, samples)
    broken = tmp_path / "broken.fsa"
    broken.write_bytes(b"not zlib at all")
    with pytest.raises(FormatError):
        import_faceswap(photos_dataset, "B", broken, samples)
    traversal = tmp_path / "traversal.fsa"
    face = {"x": 1, "y": 1, "w": 9, "h": 9, "landmarks_xy": np.zeros((68, 2), np.float32)}
    traversal.write_bytes(zlib.compress(pickle.dumps({"../../etc/passwd": [face]})))
    summary = import_faceswap(photos_dataset, "B", traversal, samples)
    assert summary.added == 0 and "would leave" in summary.skipped[0][1]
    assert len(fo.load_dataset(photos_dataset)) == count

    folder = tmp_path / "dflbad"
    folder.mkdir()
    jpg = (samples / "obama.jpg").read_bytes()
    (folder / "evil.jpg").write_bytes(_with_app15(jpg, pickle.dumps(_RunsCode())))
    (folder / "plain.jpg").write_bytes(jpg)
    (folder / "escape.jpg").write_bytes(write_dfl_meta(jpg, {"landmarks": np.zeros((68, 2)).tolist(), "source_filename": "../../x.jpg"}))
    summary = import_dfl(photos_dataset, "B", folder, frames=samples)
    reasons = dict((k.rsplit("/", 1)[-1], v) for k, v in summary.skipped)
    assert summary.added == 0 and len(reasons) == 3
    assert "refusing to load" in reasons["evil.jpg"] and "no DeepFaceLab metadata" in reasons["plain.jpg"]
    assert "would leave" in reasons["escape.jpg"]
    err = capsys.readouterr().err
    assert err.count("faceset: skipped") >= 3
    assert len(fo.load_dataset(photos_dataset)) == count
    import os
    assert not os.path.exists("/tmp/faceset-pwned")


def _with_app15(jpg: bytes, payload: bytes) -> bytes:
    import struct
    return jpg[:2] + b"\xff\xef" + struct.pack(">H", len(payload) + 2) + payload + jpg[2:]


def test_faceswap_masks_are_imported_into_the_crop(photos_dataset, samples, tmp_path):
    import cv2
    import fiftyone as fo

    from curate.export.balanced import export_faces
    from curate.interop.faceswap.codec import read_alignments, write_alignments
    from curate.interop.importing import import_faceswap

    out = tmp_path / "fs"
    export_faces(photos_dataset, "B", out, fmt="faceswap", progress=False)
    frames, _ = read_alignments(out / "alignments.fsa")
    face = frames["obama.jpg"][0]
    pts = face["landmarks_xy"]
    lo, hi = pts.min(0) - 10, pts.max(0) + 10
    scale = 128 / (hi - lo).max()
    affine = np.array([[scale, 0, -lo[0] * scale], [0, scale, -lo[1] * scale]])  # frame -> 128 px mask space
    mask = np.zeros((128, 128), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts * scale + affine[:, 2]).astype(np.int32)), 255)
    face["mask"] = {"components": {"mask": zlib.compress(mask.tobytes()), "affine_matrix": affine,
                                   "interpolator": 2, "stored_size": 128, "stored_centering": "face"}}
    for f in frames.values():
        for x in f:
            x.pop("masks", None)
    write_alignments(out / "alignments.fsa", frames)
    back = f"{photos_dataset}-masks"
    import_faceswap(back, "B", out / "alignments.fsa", samples)
    sample = fo.load_dataset(back).match({"source": {"$regex": "obama.jpg$"}}).first()
    crop_mask = sample.mask_components.mask.astype(bool)
    size = crop_mask.shape[0]
    hull = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(np.asarray(sample.landmarks.keypoints[0].points) * size).astype(np.int32)), 1)
    iou = (crop_mask & hull.astype(bool)).sum() / (crop_mask | hull.astype(bool)).sum()
    print(f"imported mask vs landmark hull in the crop: IoU {iou:.3f}")
    assert iou > 0.9


def test_faceswap_mask_names_identity_and_video_meta_are_kept(photos_dataset, samples, tmp_path):
    import cv2
    import fiftyone as fo

    from curate.export.balanced import export_faces
    from curate.interop.faceswap.codec import read_alignments
    from curate.interop.importing import import_faceswap

    out = tmp_path / "fs"
    export_faces(photos_dataset, "B", out, fmt="faceswap", progress=False)
    frames, _ = read_alignments(out / "alignments.fsa")
    face = dict(frames["obama.jpg"][0])
    pts = face["landmarks_xy"]
    affine = np.array([[0.5, 0, -pts[:, 0].min() * 0.5 + 4], [0, 0.5, -pts[:, 1].min() * 0.5 + 4]])
    mask = np.zeros((128, 128), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts * 0.5 + affine[:, 2]).astype(np.int32)), 255)
    stored = {"mask": zlib.compress(mask.tobytes()), "affine_matrix": affine, "interpolator": 2, "stored_size": 128,
              "stored_centering": "face"}
    names = ["components", "extended", "unet-dfl", "vgg-clear", "vgg-obstructed", "bisenet-fp_face",
             "bisenet-fp_head", "custom_face", "custom_head"]
    face.pop("masks", None)
    face.pop("video_meta", None)
    face["mask"] = {n: stored for n in names}
    raw = pickle.loads(zlib.decompress((out / "alignments.fsa").read_bytes()))  # our own file: trusted here
    written = raw["__data__"]["obama.jpg"]["faces"][0]
    assert isinstance(written["landmarks_xy"], list) and isinstance(written.get("thumb", []), list)
    face["identity"] = {"vggface2": np.arange(512, dtype=np.float32) / 512}
    # faceswap's own v2 layout (lib/align/alignments.py): frame -> {"faces": [...], "video_meta": {...}}
    data = {"__meta__": {"version": 2.4}, "__data__": {
        "obama.jpg": {"faces": [face], "video_meta": {"pts_time": 1.25, "keyframe": True}}}}
    fsa = tmp_path / "masks.fsa"
    fsa.write_bytes(zlib.compress(pickle.dumps(data)))
    back = f"{photos_dataset}-names"
    summary = import_faceswap(back, "B", fsa, samples)
    assert summary.added == 1 and not summary.skipped
    sample = fo.load_dataset(back).first()
    fields = {f"mask_{n.replace('-', '_')}" for n in names}
    assert fields <= set(sample.field_names)
    assert sample.mask_names == {f"mask_{n.replace('-', '_')}": n for n in names}
    assert sample.mask_unet_dfl.mask.any() and sample.mask_unet_dfl.mask.shape == sample.mask_components.mask.shape
    assert len(sample.faceswap_identity["vggface2"]) == 512
    assert sample.faceswap_video_meta == {"pts_time": 1.25, "keyframe": True}
    bad = tmp_path / "bad.fsa"
    face["mask"] = {"../../x\n": stored}
    bad.write_bytes(zlib.compress(pickle.dumps({"__meta__": {"version": 2.4}, "__data__": {"obama.jpg": {"faces": [face]}}})))
    with pytest.raises(Exception, match="not a plain name"):
        import_faceswap(f"{photos_dataset}-bad", "B", bad, samples)


def _faceswap_matrix_by_the_book(landmarks: np.ndarray, size: int) -> np.ndarray:
    """faceswap's aligned-face matrix computed here from its documented constants and formulas (lib/align),
    independently of curate.interop.faceswap.geometry: Umeyama (skimage's formulation) of points 17-67 onto the
    51-point mean face, solvePnP of 26 of them against the 3D mean head (focal 4, centre 0.5), head centre
    (0, 0, -2.3) projected, padding round(size * (0.625 + 1 - 1) / 2)."""
    from importlib.resources import files

    import cv2

    with (files("curate") / "data" / "faceswap_geometry.npz").open("rb") as fh:
        c = dict(np.load(fh))
    src, dst = landmarks[17:], c["mean_face_51"]
    sm, dm = src.mean(0), dst.mean(0)
    a = (dst - dm).T @ (src - sm) / len(src)
    d = np.ones(2)
    if np.linalg.det(a) < 0:
        d[1] = -1
    u, sv, vt = np.linalg.svd(a)
    rot = u @ np.diag(d) @ vt
    scale = 1.0 / (src - sm).var(0).sum() * (sv @ d)
    legacy = np.hstack([scale * rot, (dm - scale * rot @ sm)[:, None]])
    aligned = landmarks @ legacy[:, :2].T + legacy[:, 2]
    cam = np.array([[4, 0, 0.5], [0, 4, 0.5], [0, 0, 1]], dtype=np.float64)
    _, rv, tv = cv2.solvePnP(c["mean_face_3d_26"], aligned[c["core_landmarks"]], cam, np.zeros((4, 1)))
    head = cv2.projectPoints(np.array([[0.0, 0.0, -2.3]]), rv, tv, cam, np.zeros((4, 1)))[0].reshape(2) - 0.5
    pad = round(size * 0.625 / 2)
    m = legacy.copy()
    m[:, 2] -= head
    m = m * (size - 2 * pad)
    m[:, 2] += pad
    return m


def test_faceswap_export_is_cut_in_faceswaps_own_geometry(photos_dataset, samples, tmp_path):
    import cv2

    from curate.core.media import load_image
    from curate.export.balanced import export_faces
    from curate.interop.faceswap.codec import read_alignments

    out = tmp_path / "fs"
    export_faces(photos_dataset, "B", out, fmt="faceswap", size=256, progress=False)
    frames, _ = read_alignments(out / "alignments.fsa")
    checked = 0
    for png in sorted(p for p in out.glob("*.png") if p.name != "distribution.png"):
        meta = read_png_meta(png.read_bytes())
        name = meta["source"]["source_filename"]
        marks = np.asarray(meta["alignments"]["landmarks_xy"], dtype=np.float64)
        expected = _faceswap_matrix_by_the_book(marks, 256)
        corners = np.array([[0, 0], [255, 0], [0, 255], [255, 255]], dtype=np.float64)
        inv = cv2.invertAffineTransform(expected)
        frame_corners = corners @ inv[:, :2].T + inv[:, 2]
        # the exported face shows the frame region faceswap's matrix selects: compare pixels
        want = cv2.warpAffine(load_image(samples / name), expected, (256, 256), flags=cv2.INTER_AREA)
        got = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
        assert np.abs(want.astype(int) - got.astype(int)).mean() < 2.0, name
        fs_marks = marks @ expected[:, :2].T + expected[:, 2]
        manifest = json.loads((out / "manifest.json").read_text())
        row = next(f for f in manifest["faces"] if f["file"] == png.name)
        assert np.abs(np.asarray(row["landmarks"]) - fs_marks).max() < 1.0  # within 1 px
        assert np.isfinite(frame_corners).all()
        checked += 1
    assert checked == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["alignment"]["geometry"] == "faceswap-head"
    from train.data import FaceSetError, load_faceset

    with pytest.raises(FaceSetError, match="faceswap-head geometry"):  # faceset trains on its own geometry only
        load_faceset(out, 64)


def _dfl_matrix_by_the_book(landmarks: np.ndarray, size: int, padding: float, up: float = 0.0) -> np.ndarray:
    """DeepFaceLab's get_transform_mat recomputed here from its documented formula (facelib/LandmarksProcessor):
    Umeyama of points 17-48 + 54 onto landmarks_2D_new, unit square back into the frame, the square along its
    diagonals with half-diagonal |c0 - c2| * (padding * sqrt(2) + 0.5), centre moved up by ``up`` of a side."""
    from importlib.resources import files

    import cv2

    with (files("curate") / "data" / "dfl_geometry.npz").open("rb") as fh:
        mean = np.load(fh)["landmarks_2d_new"]
    src = np.concatenate([landmarks[17:49], landmarks[54:55]])
    sm, dm = src.mean(0), mean.mean(0)
    a = (mean - dm).T @ (src - sm) / len(src)
    u, sv, vt = np.linalg.svd(a)
    d = np.ones(2) if np.linalg.det(a) >= 0 else np.array([1.0, -1.0])
    rot = u @ np.diag(d) @ vt
    scale = (sv @ d) / (src - sm).var(0).sum()
    unit = np.hstack([scale * rot, (dm - scale * rot @ sm)[:, None]])
    inv = cv2.invertAffineTransform(unit)
    g = np.array([(0, 0), (1, 0), (1, 1), (0, 1), (0.5, 0.5)], dtype=np.float64) @ inv[:, :2].T + inv[:, 2]
    c = g[4] + (g[0] - g[3]) * up
    tb, bt = (g[2] - g[0]) / np.linalg.norm(g[2] - g[0]), (g[1] - g[3]) / np.linalg.norm(g[1] - g[3])
    mod = np.linalg.norm(g[0] - g[2]) * (padding * np.sqrt(2.0) + 0.5)
    src3 = np.float32([c - tb * mod, c + bt * mod, c + tb * mod])
    return cv2.getAffineTransform(src3, np.float32([(0, 0), (size, 0), (size, size)]))


@pytest.mark.parametrize("face_type,padding,up", [("full_face", 0.2109375, 0.0), ("whole_face", 0.40, 0.07)])
def test_dfl_export_is_cut_in_deepfacelabs_face_type_geometry(photos_dataset, samples, tmp_path, face_type, padding, up):
    import cv2

    from curate.core.media import load_image
    from curate.export.balanced import export_faces
    from curate.interop.dfl.codec import read_dfl_meta

    out = tmp_path / face_type
    export_faces(photos_dataset, "B", out, fmt="dfl", size=256, face_type=face_type, progress=False)
    jpgs = sorted(out.glob("*.jpg"))
    assert len(jpgs) == 4
    for jpg in jpgs:
        meta = read_dfl_meta(jpg.read_bytes())
        assert meta["face_type"] == face_type
        marks = np.asarray(meta["source_landmarks"], dtype=np.float64)
        expected = _dfl_matrix_by_the_book(marks, 256, padding, up)
        ours = np.asarray(meta["image_to_face_mat"], dtype=np.float64)
        corners = np.array([[0, 0], [255, 0], [0, 255], [255, 255]], dtype=np.float64)
        a, b = cv2.invertAffineTransform(expected), cv2.invertAffineTransform(ours)
        assert np.abs((corners @ a[:, :2].T + a[:, 2]) - (corners @ b[:, :2].T + b[:, 2])).max() < 1.0
        aligned = np.asarray(meta["landmarks"], dtype=np.float64)
        assert np.abs(aligned - (marks @ expected[:, :2].T + expected[:, 2])).max() < 1.0
        want = cv2.warpAffine(load_image(samples / meta["source_filename"]), expected, (256, 256))
        got = cv2.cvtColor(cv2.imread(str(jpg)), cv2.COLOR_BGR2RGB)
        assert np.abs(want.astype(int) - got.astype(int)).mean() < 4.0  # (JPEG)


@pytest.mark.parametrize("layout", ["new", "old"])
def test_dfl_xseg_polygons_and_masks_import_from_new_and_old_keys(photos_dataset, samples, tmp_path, layout):
    import cv2
    import fiftyone as fo

    from curate.export.balanced import export_faces
    from curate.interop.dfl.codec import read_dfl_meta, write_dfl_meta
    from curate.interop.importing import import_dfl

    out = tmp_path / "dfl"
    export_faces(photos_dataset, "B", out, fmt="dfl", size=256, progress=False)
    jpg = out / "obama_0.jpg"
    data = jpg.read_bytes()
    meta = read_dfl_meta(data)
    pts = np.asarray(meta["landmarks"], dtype=np.float64)
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)
    mask = np.zeros((256, 256), np.uint8)
    cv2.fillPoly(mask, [np.round(hull).astype(np.int32)], 255)
    mouth = pts[48:60].astype(np.float32)
    if layout == "new":  # DeepFaceLab 2.0: SegIEPolys.dump() and an encoded PNG xseg_mask
        meta["seg_ie_polys"] = {"polys": [{"type": 1, "pts": hull.astype(np.float32)}, {"type": 0, "pts": mouth}]}
        meta["xseg_mask"] = cv2.imencode(".png", mask)[1]
    else:  # older files: ie_polys as [(type, pts)], a JPEG fanseg_mask, pitch_yaw_roll in radians
        meta["ie_polys"] = [(1, hull.tolist()), (0, mouth.tolist())]
        meta["fanseg_mask"] = cv2.imencode(".jpg", mask)[1]
        meta["pitch_yaw_roll"] = (0.1, -0.2, 0.05)
    only = tmp_path / "one"
    only.mkdir()
    (only / jpg.name).write_bytes(write_dfl_meta(data, meta))
    for frames in (samples, None):
        back = f"{photos_dataset}-{layout}{frames is None}"
        assert import_dfl(back, "B", only, frames).added == 1
        sample = fo.load_dataset(back).first()
        labels = [p.label for p in sample.xseg_polygons.polylines]
        assert labels == ["include", "exclude"]
        field = "mask_xseg" if layout == "new" else "mask_fanseg"
        got = sample[field].mask.astype(bool)
        size = got.shape[0]
        drawn = np.zeros((size, size), np.uint8)  # the include polygon, drawn in the crop, is the mask
        poly = np.asarray(sample.xseg_polygons.polylines[0].points[0]) * size
        cv2.fillPoly(drawn, [np.round(poly).astype(np.int32)], 1)
        iou = (got & drawn.astype(bool)).sum() / max((got | drawn.astype(bool)).sum(), 1)
        assert iou > 0.9, iou
        if layout == "old":
            assert sample.dfl_pitch_yaw_roll == pytest.approx([0.1, -0.2, 0.05])


@pytest.mark.parametrize("fmt", ["faceswap", "dfl"])
def test_export_rendered_on_a_dask_cluster_equals_a_local_export(faces_dataset, tmp_path, monkeypatch, fmt):
    """`export --cluster`: parts of the faces are cut by the workers (a frame's faces never split); the folder is
    byte for byte the local export's."""
    import json

    from distributed import LocalCluster

    from curate.export import balanced as export

    monkeypatch.setattr(export, "RENDER_PART", 4)  # several parts, also inside the clip
    local = export.export_faces(faces_dataset, "A", tmp_path / "local", fmt=fmt, size=96, progress=False)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    try:
        remote = export.export_faces(faces_dataset, "A", tmp_path / "cluster", fmt=fmt, size=96, progress=False,
                                     cluster=cluster.scheduler_address)
    finally:
        cluster.close()
    assert remote.count == local.count > 8
    a, b = (json.loads(r.manifest.read_text())["faces"] for r in (local, remote))
    assert a == b
    files = sorted(p.name for p in (tmp_path / "local").iterdir() if p.name != "distribution.png")
    assert files == sorted(p.name for p in (tmp_path / "cluster").iterdir() if p.name != "distribution.png")
    for name in files:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "cluster" / name).read_bytes(), name


def test_render_parts_never_split_a_frame():
    from pathlib import Path

    from curate.export.balanced import render_parts

    faces = [{"source": s, "frame": f} for s, f in [("a", 0), ("a", 0), ("a", 0), ("a", 1), ("b", 0), ("b", 0), ("b", 2)]]
    parts = render_parts(Path("/out"), "faceswap", faces, None, "full_face", per_part=2)
    assert [[(v["source"], v["frame"]) for v in p.faces] for p in parts] == [
        [("a", 0)] * 3, [("a", 1), ("b", 0), ("b", 0)], [("b", 2)]]


def test_sources_gone_get_one_warning_each_locally_and_on_a_cluster(samples, dataset_name, tmp_path, monkeypatch,
                                                                    capsys):
    """faceswap/DFL crops are cut from the source frames; a source that is gone or broken gets one warning line
    naming it (the crops then come from faceset's own), on the local path and on a cluster alike."""
    import shutil

    import fiftyone as fo
    from distributed import LocalCluster

    from curate.export import balanced as export
    from curate.extract.local import extract

    copies = []
    for name in ("obama.jpg", "biden.jpg", "two_people.jpg"):
        shutil.copy(samples / name, tmp_path / name)
        copies.append(tmp_path / name)
    extract(copies, dataset_name, "B", workers=1, progress=False)
    try:
        faces = len(fo.load_dataset(dataset_name))
        copies[1].unlink()  # gone
        copies[2].write_bytes(b"not an image any more")  # broken
        capsys.readouterr()
        monkeypatch.setattr(export, "RENDER_PART", 1)  # a part per frame: two_people.jpg's faces stay together
        local = export.export_faces(dataset_name, "B", tmp_path / "local", fmt="faceswap", progress=False)
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
        try:
            err_local = capsys.readouterr().err
            remote = export.export_faces(dataset_name, "B", tmp_path / "cluster", fmt="faceswap", progress=False,
                                         cluster=cluster.scheduler_address)
        finally:
            cluster.close()
        err_remote = capsys.readouterr().err
        assert local.count == remote.count == faces
        for err in (err_local, err_remote):
            lines = [x for x in err.splitlines() if "is not readable" in x]
            assert sorted(lines) == sorted(f"faceset: warning: {p} is not readable: the exported crops are cut from "
                                           "faceset's crops instead, with black where they end" for p in copies[1:])
    finally:
        fo.delete_dataset(dataset_name)
