"""Head pose fitted on real faces (issue 25): options for the mediapipe backend's yaw/pitch/roll, by cross-validation.

    .venv/bin/python bench/pose_fit.py [--out bench/out/pose_fit.txt] [--cache /tmp/posefit]
    .venv/bin/python bench/pose_fit.py --save /tmp/posefit/pose_weights.npz   # fit on all images, write weights

Step 1 (cached in ``--cache``/features.npz): every AFLW2000-3D image of ../shared/groundtruth/aflw2000 goes
through the default analyzer (``create_analyzer("mediapipe")``), once as it is and once mirrored left-right; the
face nearest the image centre is kept with its mesh, 6 BlazeFace keypoints, 68 points, box, stored pose and the
raw poses of curate.core.pose. The dlib backend (HOG + 68 points + solvePnP) is run once too, for its
per-|yaw| errors (``dlib.npz``).

Step 2: 5-fold cross-validation split by image (fixed seed) of the options (baseline, calibrations, regressors
from normalised geometry) for faces with a mesh and for keypoint-only pose; yaw/pitch/roll/MAE overall, yaw MAE
per |true yaw| bin, the spread across folds, and the flip symmetry (mirrored image -> opposite yaw/roll).

Labels: AFLW's yaw sign is the opposite of faceset's (checked below by correlation); pitch and roll share
faceset's signs. Images with any |angle| > 99 degrees are dropped (the literature's protocol). This is research
data: only numbers are written.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from curate.analysis.protocols import Detection
from curate.analysis.backends.mediapipe.blazeface import mirror_detection

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "groundtruth" / "aflw2000"
N_MESH, N_KP, N_68 = 468, 6, 68
NAN3 = (np.nan, np.nan, np.nan)


# ----------------------------------------------------------------------------------------------------- step 1
def load_labels(data: Path = DATA) -> tuple[list[str], np.ndarray]:
    """File names and AFLW (yaw, pitch, roll) degrees as in labels.csv."""
    with open(data / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    files = [r["file"] for r in rows]
    angles = np.array([[float(r["yaw_deg"]), float(r["pitch_deg"]), float(r["roll_deg"])] for r in rows])
    return files, angles


def central_face(faces: list, shape: tuple[int, ...]):  # noqa: ANN001, ANN201
    """The face whose box centre is nearest the image centre (ties: the larger box)."""
    if not faces:
        return None
    cy, cx = shape[0] / 2.0, shape[1] / 2.0

    def key(f):  # noqa: ANN001, ANN202
        x, y, w, h = f.bbox
        return (np.hypot(x + w / 2 - cx, y + h / 2 - cy) / max(np.sqrt(w * h), 1.0), -w * h)

    return min(faces, key=key)


def _pose(fn, arg) -> tuple[float, float, float]:  # noqa: ANN001
    try:
        return tuple(fn(arg))
    except (ValueError, cv2.error):
        return NAN3


def extract(files: list[str], data: Path) -> dict[str, np.ndarray]:
    """Per image and pass (0 as it is, 1 mirrored): what the mediapipe backend gives for the central face."""
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    from curate.analysis.registry import create_analyzer
    from curate.analysis.frame import face_pose
    from curate.core.pose import estimate_pose, keypoint_pose_raw, mesh_pose_raw

    an = create_analyzer("mediapipe")
    n = len(files)
    out = {
        "found": np.zeros((n, 2), bool), "n_faces": np.zeros((n, 2), np.int16), "ok": np.zeros((n, 2), bool),
        "has_mesh": np.zeros((n, 2), bool), "bbox": np.full((n, 2, 4), np.nan), "score": np.full((n, 2), np.nan),
        "mesh": np.full((n, 2, N_MESH, 3), np.nan, np.float32), "kps": np.full((n, 2, N_KP, 2), np.nan),
        "lm68": np.full((n, 2, N_68, 2), np.nan), "pose_stored": np.full((n, 2, 3), np.nan),
        "pose_mesh_raw": np.full((n, 2, 3), np.nan), "pose_kp_raw": np.full((n, 2, 3), np.nan),
        "pose_68": np.full((n, 2, 3), np.nan), "width": np.zeros(n),
    }
    t0 = time.time()
    for i, name in enumerate(files):
        rgb = cv2.cvtColor(cv2.imread(str(data / name)), cv2.COLOR_BGR2RGB)
        out["width"][i] = rgb.shape[1]
        for p, img in enumerate((rgb, np.ascontiguousarray(rgb[:, ::-1]))):
            faces = an.analyze(img)
            face = central_face(faces, img.shape)
            out["n_faces"][i, p] = len(faces)
            if face is None:
                continue
            out["found"][i, p] = True
            out["ok"][i, p] = bool(face.landmarks_ok)
            out["bbox"][i, p] = face.bbox
            out["score"][i, p] = face.score
            out["lm68"][i, p] = np.asarray(face.landmarks)[:, :2]
            out["pose_stored"][i, p] = _pose(face_pose, face)
            out["pose_68"][i, p] = _pose(estimate_pose, face.landmarks)
            if face.keypoints is not None:
                out["kps"][i, p] = np.asarray(face.keypoints)[:, :2]
                out["pose_kp_raw"][i, p] = _pose(keypoint_pose_raw, face.keypoints)
            if face.mesh is not None:
                out["has_mesh"][i, p] = True
                out["mesh"][i, p] = face.mesh
                out["pose_mesh_raw"][i, p] = _pose(mesh_pose_raw, face.mesh)
        if (i + 1) % 100 == 0:
            print(f"  {i + 1}/{n} images, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    out["seconds"] = np.array(time.time() - t0)
    return out


def extract_dlib(files: list[str], data: Path) -> dict[str, np.ndarray]:
    """The dlib backend's pose (HOG detector, 68-point predictor, estimate_pose) of the central face."""
    cv2.setNumThreads(1)
    from curate.analysis.registry import create_analyzer
    from curate.core.pose import estimate_pose

    an = create_analyzer("dlib")
    pose = np.full((len(files), 3), np.nan)
    t0 = time.time()
    for i, name in enumerate(files):
        rgb = cv2.cvtColor(cv2.imread(str(data / name)), cv2.COLOR_BGR2RGB)
        dets = an.detector.detect(rgb)  # the embedding is not needed: detector and landmarker only
        if dets:
            cy, cx = rgb.shape[0] / 2.0, rgb.shape[1] / 2.0
            det = min(dets, key=lambda d: np.hypot(d.bbox[0] + d.bbox[2] / 2 - cx, d.bbox[1] + d.bbox[3] / 2 - cy))
            pose[i] = _pose(estimate_pose, an.landmarker.landmarks(rgb, det))
    return {"pose": pose, "seconds": np.array(time.time() - t0)}


def cached(path: Path, fn, *args) -> dict[str, np.ndarray]:  # noqa: ANN001
    """``fn(*args)`` saved to / loaded from an .npz."""
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    result = fn(*args)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **result)
    return result


# ----------------------------------------------------------------------------------------------------- features
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # mesh vertices of the eye line (subject's right eye = image left)


def _derolled(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, float]:
    """Points centred, turned so the a->b line is horizontal, divided by their RMS radius in x/y; the line's
    angle (degrees, clockwise on screen > 0, like roll), the centre and the scale."""
    pts = np.asarray(points, dtype=np.float64)
    theta = float(np.arctan2(b[1] - a[1], b[0] - a[0]))
    centre = pts.mean(axis=0)
    c, s = np.cos(theta), np.sin(theta)
    rel = pts - centre
    xy = rel[:, :2] @ np.array([[c, -s], [s, c]])  # rotate by -theta
    scale = float(np.sqrt((xy**2).sum(axis=1).mean())) or 1.0
    out = rel / scale
    out[:, :2] = xy / scale
    return out, float(np.degrees(theta)), centre, scale


def mesh_features(mesh: np.ndarray) -> tuple[np.ndarray, float]:
    """(1404 features, eye-line angle in degrees) of a 468x3 mesh (pixels): x, y, z of every vertex with the
    translation, the scale and the eye line's in-plane angle removed."""
    pts = np.asarray(mesh, dtype=np.float64)
    out, theta, _, _ = _derolled(pts, pts[RIGHT_EYE_OUTER], pts[LEFT_EYE_OUTER])
    return out.ravel(), theta


def mirror_keypoints(keypoints: np.ndarray, width: float) -> np.ndarray:
    """BlazeFace keypoints of the image flipped left-right (the backend's mirror_detection)."""
    kps = tuple(map(tuple, np.asarray(keypoints, dtype=np.float64)[:, :2].tolist()))
    return np.asarray(mirror_detection(Detection((0.0, 0.0, 0.0, 0.0), 0.0, kps), width).keypoints)


def mirror_bbox(bbox: np.ndarray, width: float) -> np.ndarray:
    """A box (x, y, w, h) in the image flipped left-right (the backend's mirror_detection)."""
    return np.asarray(mirror_detection(Detection(tuple(map(float, bbox)), 0.0), width).bbox)


# ----------------------------------------------------------------------------------------------------- angles
# faceset's own functions (curate/core/pose.py): what the shipped corrections read. The angles are read in
# AFLW's Euler order, R = Rx(-pitch) @ Ry(-yaw) @ Rz(roll) (pose_from_rotation / rotation_from_pose).
def aflw_angles(rotation: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) of a model-to-camera rotation, as faceset reads it."""
    from curate.core.pose import pose_from_rotation

    return np.array(pose_from_rotation(rotation))


def angle_basis(angles: np.ndarray) -> np.ndarray:
    from curate.core.pose import angle_basis as basis

    return basis(angles)


def poly2(x: np.ndarray) -> np.ndarray:
    from curate.core.pose import pairwise_products

    return pairwise_products(x)


def mesh_regressor_inputs(mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(base angles, features) of the shipped mesh correction (c2)."""
    from curate.core.pose import mesh_pose_inputs

    return mesh_pose_inputs(mesh)


def keypoint_regressor_inputs(keypoints: np.ndarray, bbox: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(base angles, [base / 30, keypoint layout]) of BlazeFace's 6 keypoints and box (the kernel option kc2
    reads these; the shipped kc1 reads curate's keypoint_pose_inputs, built from the same layout)."""
    from curate.core.pose import keypoint_layout, keypoint_pose_raw

    base = np.array(keypoint_pose_raw(keypoints))
    return base, np.concatenate([base / 30.0, keypoint_layout(keypoints, tuple(bbox))])


def landmark_base(landmarks: np.ndarray) -> np.ndarray:
    """68-point solvePnP angles (the base of the shipped landmark correction, option d)."""
    from curate.core.pose import estimate_pose

    return np.array(estimate_pose(landmarks))


# ----------------------------------------------------------------------------------------------------- models
SIGN = np.array([-1.0, 1.0, -1.0])  # mirroring: yaw and roll change sign


class RidgeModel:
    """Standardised ridge regression of (truth - base) on features; numpy weights."""

    def __init__(self, alpha: float, scale: bool = True):
        self.alpha, self.scale = alpha, scale

    def fit(self, x: np.ndarray, y: np.ndarray) -> RidgeModel:
        from sklearn.linear_model import Ridge

        self.mean = x.mean(axis=0)
        sd = x.std(axis=0)
        self.sd = np.where(sd > 1e-12, sd, 1.0) if self.scale else np.ones(x.shape[1])
        model = Ridge(alpha=self.alpha).fit((x - self.mean) / self.sd, y)
        self.coef, self.intercept = model.coef_, model.intercept_
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((np.atleast_2d(x) - self.mean) / self.sd) @ self.coef.T + self.intercept


class KernelModel:
    """Standardised RBF kernel ridge regression of (truth - base) on features; numpy weights (the standardised
    training rows and their dual coefficients)."""

    def __init__(self, alpha: float, gamma: float):
        self.alpha, self.gamma = alpha, gamma

    def fit(self, x: np.ndarray, y: np.ndarray) -> KernelModel:
        self.mean = x.mean(axis=0)
        sd = x.std(axis=0)
        self.sd = np.where(sd > 1e-12, sd, 1.0)
        self.train = (x - self.mean) / self.sd
        gram = self._kernel(self.train)
        self.dual = np.linalg.solve(gram + self.alpha * np.eye(len(gram)), y)
        return self

    def _kernel(self, z: np.ndarray) -> np.ndarray:
        d2 = (z**2).sum(1)[:, None] + (self.train**2).sum(1)[None] - 2.0 * z @ self.train.T
        return np.exp(-self.gamma * np.maximum(d2, 0.0))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._kernel((np.atleast_2d(x) - self.mean) / self.sd) @ self.dual


# ----------------------------------------------------------------------------------------------------- step 2
def derive(f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per image: base angles and features of every option, for pass 0 (as it is), pass 1 (the mirrored image,
    as analysed) and 'syn' (pass 0's geometry mirrored exactly: the training copies)."""
    from curate.core.landmarks import mirror_landmarks
    from curate.core.mesh import mirror_mesh
    n = len(f["width"])
    d: dict[str, np.ndarray] = {}

    def put(key: str, i: int, value: np.ndarray) -> None:
        if key not in d:
            d[key] = np.full((n,) + np.shape(value), np.nan)
        d[key][i] = value

    for i in range(n):
        w = f["width"][i]
        for tag, p in (("0", 0), ("1", 1)):
            if f["has_mesh"][i, p]:
                mesh = f["mesh"][i, p].astype(np.float64)
                variants = [(tag, mesh)] + ([("syn", mirror_mesh(mesh, w))] if p == 0 else [])
                for t, m in variants:
                    base, feats = mesh_regressor_inputs(m)
                    put("mesh_base_" + t, i, base)
                    put("mesh_x_" + t, i, feats)
                    coords, theta = mesh_features(m)
                    put("coords_base_" + t, i, np.array([0.0, 0.0, theta]))
                    put("coords_x_" + t, i, coords)
                lm = f["lm68"][i, p]
                for t, pts in [(tag, lm)] + ([("syn", mirror_landmarks(lm, w))] if p == 0 else []):
                    put("lm_base_" + t, i, landmark_base(pts))
            if f["found"][i, p]:
                kps, box = f["kps"][i, p], f["bbox"][i, p]
                variants = [(tag, kps, box)] + ([("syn", mirror_keypoints(kps, w), mirror_bbox(box, w))] if p == 0 else [])
                for t, k, b in variants:
                    base, feats = keypoint_regressor_inputs(k, b)
                    put("kp_base_" + t, i, base)
                    put("kp_x_" + t, i, feats)
        # flip test-time augmentation: the face as found in the image and (mirrored back) in the mirrored image,
        # averaged; its mirror is exact, so pass "1" is the exact mirror
        if f["found"][i].all():
            kps = (f["kps"][i, 0] + mirror_keypoints(f["kps"][i, 1], w)) / 2.0
            box = (f["bbox"][i, 0] + mirror_bbox(f["bbox"][i, 1], w)) / 2.0
            for t, k, b in (("0", kps, box), ("1", mirror_keypoints(kps, w), mirror_bbox(box, w))):
                base, feats = keypoint_regressor_inputs(k, b)
                put("kptta_base_" + t, i, base)
                put("kptta_x_" + t, i, feats)
        if f["has_mesh"][i].all():
            mesh = (f["mesh"][i, 0].astype(np.float64) + mirror_mesh(f["mesh"][i, 1].astype(np.float64), w)) / 2.0
            for t, m in (("0", mesh), ("1", mirror_mesh(mesh, w))):
                base, feats = mesh_regressor_inputs(m)
                put("meshtta_base_" + t, i, base)
                put("meshtta_x_" + t, i, feats)
    for key in list(d):  # angle-only calibrations read the basis of their base angles
        if "_base_" in key:
            d[key.replace("_base_", "_basis_")] = np.where(np.isfinite(d[key][:, :1]), angle_basis(np.nan_to_num(d[key])), np.nan)
        if key.startswith(("kp_x_", "kptta_x_")):
            d[key.replace("_x_", "_quad_")] = np.concatenate(
                [angle_basis(np.nan_to_num(d[key.replace("_x_", "_base_")])), poly2(np.nan_to_num(d[key][:, 3:]))], axis=1)
    return d


OLD_KEYPOINT_KNOTS = (((0.0, 0.0), (9.4, 15.0), (21.6, 30.0), (36.2, 45.0), (48.3, 60.0)),
                      ((0.0, 0.0), (10.7, 15.0), (23.5, 30.0)))  # faceset <= d217842's render calibration


def old_keypoint_pose(raw: np.ndarray) -> np.ndarray:
    """The keypoint pose faceset stored before the learned corrections (raw keypoint PnP in the earlier Euler
    reading, as cached by step 1, through the render-fitted knots): the baseline row 'ka'."""
    out = np.array(raw, dtype=np.float64)
    for j, knots in enumerate(OLD_KEYPOINT_KNOTS):
        r, t = np.array(knots).T
        v = np.abs(out[:, j])
        mapped = np.where(v > r[-1], np.minimum(90.0, t[-1] + v - r[-1]), np.interp(v, r, t))
        out[:, j] = np.sign(out[:, j]) * mapped
    return out


def folds_of(n: int, k: int, seed: int) -> np.ndarray:
    """Fold index (0..k-1) of each of n images: a fixed random permutation cut in k parts."""
    fold = np.empty(n, dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
    return fold


def cross_validate(y: np.ndarray, fold: np.ndarray, base: str, feats: str | None, make, d: dict,  # noqa: ANN001
                   test: tuple[str, str] | None = None) -> dict:
    """Out-of-fold predictions for pass 0 and pass 1 of an option: base angles (+ a model of truth - base fitted
    on the other folds' images and their exact mirrors); ``test`` = (base, features) keys to predict from
    instead (the same model applied to flip-averaged inputs)."""
    b0 = d[base + "_0"]
    tb, tx = test if test is not None else (base, feats)
    t0, t1 = d[tb + "_0"], d[tb + "_1"]
    p0, p1 = t0.copy(), t1.copy()
    if feats is not None:
        x0, xs, bs = d[feats + "_0"], d[feats + "_syn"], d[base + "_syn"]
        ok0 = np.isfinite(b0).all(1)
        for k in np.unique(fold):
            tr = ok0 & (fold != k)
            model = make().fit(np.r_[x0[tr], xs[tr]], np.r_[y[tr] - b0[tr], y[tr] * SIGN - bs[tr]])
            for x, b, p in ((d[tx + "_0"], t0, p0), (d[tx + "_1"], t1, p1)):
                te = (fold == k) & np.isfinite(b).all(1)
                if te.any():
                    p[te] = b[te] + model.predict(x[te])
    return {"p0": p0, "p1": p1}


BINS = ((0, 30), (30, 60), (60, 100))


def summary(pred: np.ndarray, y: np.ndarray, sel: np.ndarray, fold: np.ndarray) -> dict:
    """Errors of predictions on the selected images: per angle, MAE, spread over folds, yaw per |yaw| bin."""
    err = np.abs(pred[sel] - y[sel])
    byfold = [err[fold[sel] == k].mean() for k in np.unique(fold[sel])]
    ay = np.abs(y[sel, 0])
    bins = [(err[(ay >= lo) & (ay < hi), 0].mean(), int(((ay >= lo) & (ay < hi)).sum())) for lo, hi in BINS]
    return {"angles": err.mean(0), "mae": err.mean(), "sd": float(np.std(byfold)), "bins": bins, "n": int(sel.sum())}


def flip_check(p0: np.ndarray, p1: np.ndarray) -> dict:
    """How far the mirrored image's pose is from the exact mirror of the original's (yaw, roll negated)."""
    ok = np.isfinite(p0).all(1) & np.isfinite(p1).all(1)
    diff = np.abs(p0[ok] * SIGN - p1[ok])
    return {"median": np.median(diff, 0), "p95": np.percentile(diff, 95, 0),
            "within3": float(((diff[:, 0] <= 3) & (diff[:, 2] <= 3)).mean()), "n": int(ok.sum())}


MESH_ALPHA, KP_ALPHA, KP_GAMMA = 100.0, 1.0, 0.03
MESH_OPTIONS = [  # (label, base, features or None, model)
    ("a  stored pose (face_pose, render-calibrated)", "stored", None, None),
    ("a2 raw mesh fit (mesh_pose_raw)", "mesh_raw", None, None),
    ("b0 mesh fit, AFLW Euler order (no fit)", "mesh_base", None, None),
    ("b  b0 + piecewise-linear calibration (angle_basis)", "mesh_base", "mesh_basis", lambda: RidgeModel(10.0)),
    ("c1 ridge on normalised de-rolled mesh (1404)", "coords_base", "coords_x", lambda: RidgeModel(1.0, scale=False)),
    ("c2 b0 + ridge on [basis, fit residuals 99 pts]", "mesh_base", "mesh_x", lambda: RidgeModel(MESH_ALPHA)),
    ("d0 68-pt solvePnP (estimate_pose)", "pose68", None, None),
    ("d  68-pt solvePnP, AFLW order, calibrated", "lm_base", "lm_basis", lambda: RidgeModel(10.0)),
]
KP_OPTIONS = [
    ("ka stored before (raw keypoint PnP + render knots)", "kp_stored", None, None),
    ("kb0 keypoint PnP, AFLW order (no fit)", "kp_base", None, None),
    ("kb kb0 + piecewise-linear calibration", "kp_base", "kp_basis", lambda: RidgeModel(10.0)),
    ("kc1 kb0 + ridge on [basis, quadratic kp feats]", "kp_base", "kp_quad", lambda: RidgeModel(10.0)),
    ("kc2 kb0 + RBF kernel ridge on [base, kp feats]", "kp_base", "kp_x", lambda: KernelModel(KP_ALPHA, KP_GAMMA)),
]
PUBLISHED = [("dlib 68 points", 23.1, 13.6, 10.5, 15.8), ("3DDFA", 5.40, 8.53, 8.25, 7.39),
             ("HopeNet", 6.47, 6.56, 5.44, 6.16), ("FSA-Net", 4.50, 6.08, 4.64, 5.07),
             ("3DDFA-V2", 4.06, 5.26, 3.48, 4.27), ("6DRepNet", 3.63, 4.91, 3.37, 3.97)]


SHIPPED = (("mesh_", "mesh_base", "mesh_x", 5, MESH_OPTIONS), ("kp_", "kp_base", "kp_quad", 3, KP_OPTIONS),
           ("lm_", "lm_base", "lm_basis", 7, MESH_OPTIONS))  # c2, kc1, d: ridge weights only (kc2 keeps its
# training rows, which would ship the research data's geometry; kc1 is 0.1 deg behind)


def fit_all(y: np.ndarray, d: dict) -> dict[str, np.ndarray]:
    """The shipped corrections (c2 for meshes, kc1 for keypoints, d for stored 68 points) fitted on every image
    and its exact mirror: plain arrays (np.savez, no pickles) for curate/data/pose/pose_aflw.npz."""
    out: dict[str, np.ndarray] = {}
    for prefix, base, feats, k, options in SHIPPED:
        b0, x0 = d[base + "_0"], d[feats + "_0"]
        ok = np.isfinite(b0).all(1) & np.isfinite(x0).all(1)
        model = options[k][3]().fit(np.r_[x0[ok], d[feats + "_syn"][ok]],
                                    np.r_[y[ok] - b0[ok], y[ok] * SIGN - d[base + "_syn"][ok]])
        out[prefix + "mean"], out[prefix + "sd"] = model.mean, model.sd
        out[prefix + "coef"], out[prefix + "intercept"] = model.coef, model.intercept
    return out


def _row(label: str, s: dict, flip: dict | None = None) -> str:
    y, p, r = s["angles"]
    bins = " ".join(f"{e:5.2f}" for e, _ in s["bins"])
    text = f"{label:50s} {s['n']:4d} {y:5.2f} {p:5.2f} {r:5.2f}  {s['mae']:5.2f} ±{s['sd']:.2f}  {bins}"
    if flip is not None:
        text += f"   {flip['median'][0]:4.2f}/{flip['p95'][0]:4.2f} {flip['median'][2]:4.2f}/{flip['p95'][2]:4.2f}" \
                f" {flip['median'][1]:4.2f}/{flip['p95'][1]:4.2f} {100 * flip['within3']:5.1f}%"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/posefit"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "pose_fit.txt")
    ap.add_argument("--save", type=Path, default=None, help="fit the recommended models on all images, write an .npz")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    cv2.setNumThreads(1)
    warnings.filterwarnings("ignore", "Mean of empty slice")
    warnings.filterwarnings("ignore", "invalid value encountered")

    files, aflw = load_labels(args.data)
    y_all = aflw * np.array([-1.0, 1.0, 1.0])  # AFLW yaw > 0 = nose to image left; faceset's is the opposite
    keep = (np.abs(aflw) <= 99).all(axis=1)
    f = cached(args.cache / "features.npz", extract, files, args.data)
    dl = cached(args.cache / "dlib.npz", extract_dlib, files, args.data)
    t0 = time.time()
    d = derive(f)
    for key, name in (("stored", "pose_stored"), ("mesh_raw", "pose_mesh_raw"), ("pose68", "pose_68")):
        d[key + "_0"], d[key + "_1"] = f[name][:, 0], f[name][:, 1]
    d["kp_stored_0"], d["kp_stored_1"] = (old_keypoint_pose(f["pose_kp_raw"][:, k]) for k in (0, 1))
    derive_s = time.time() - t0
    y = np.where(keep[:, None], y_all, np.nan)
    fold = folds_of(len(files), args.folds, args.seed)

    if args.save is not None:
        weights = fit_all(np.nan_to_num(y), {k: np.where(keep[:, None] if v.ndim == 2 else keep, v, np.nan) for k, v in d.items()})
        args.save.parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.save, **weights)
        print(f"wrote {args.save} ({args.save.stat().st_size / 1e6:.2f} MB); faceset reads it from "
              "curate/data/pose/pose_aflw.npz")
        return

    mesh_sel = keep & f["has_mesh"][:, 0]
    found_sel = keep & f["found"][:, 0]
    kp_only = found_sel & ~f["has_mesh"][:, 0]
    t0 = time.time()
    results = {}
    for label, base, feats, make in MESH_OPTIONS + KP_OPTIONS:
        results[label] = cross_validate(np.nan_to_num(y), fold, base, feats, make, d)
    tta_mesh = cross_validate(np.nan_to_num(y), fold, "mesh_base", "mesh_x", MESH_OPTIONS[5][3], d,
                              test=("meshtta_base", "meshtta_x"))
    tta_kp = cross_validate(np.nan_to_num(y), fold, "kp_base", "kp_x", KP_OPTIONS[4][3], d, test=("kptta_base", "kptta_x"))
    tta_kp1 = cross_validate(np.nan_to_num(y), fold, "kp_base", "kp_quad", KP_OPTIONS[3][3], d,
                             test=("kptta_base", "kptta_quad"))  # the shipped kc1, as the backend runs it
    cv_s = time.time() - t0
    mesh_tta_sel = keep & f["has_mesh"].all(1)
    kp_tta_sel = keep & f["found"].all(1)

    # signs, checked on the data: correlation of the raw mesh fit with AFLW's labels
    corr = [np.corrcoef(f["pose_mesh_raw"][mesh_sel, 0, j], aflw[mesh_sel, j])[0, 1] for j in range(3)]
    head = (f"{'option':50s} {'n':>4s} {'yaw':>5s} {'pitch':>5s} {'roll':>5s}  {'MAE':>5s} {'±fold':>6s}  "
            f"yaw MAE |yaw| 0-30 30-60 60-99")
    fliphead = "   flip |Δyaw| med/p95, |Δroll|, |Δpitch|, ≤3° (yaw&roll)"
    mesh_rows, kp_rows = [], []
    for label, *_ in MESH_OPTIONS:
        r = results[label]
        mesh_rows.append((label, summary(r["p0"], y, mesh_sel, fold), flip_check(r["p0"][mesh_sel], r["p1"][mesh_sel])))
    e_pred = (results[MESH_OPTIONS[5][0]]["p0"] + results[MESH_OPTIONS[7][0]]["p0"]) / 2.0
    e_pred1 = (results[MESH_OPTIONS[5][0]]["p1"] + results[MESH_OPTIONS[7][0]]["p1"]) / 2.0
    mesh_rows.append(("e  mean of c2 and d", summary(e_pred, y, mesh_sel, fold), flip_check(e_pred[mesh_sel], e_pred1[mesh_sel])))
    c2r = results[MESH_OPTIONS[5][0]]
    tta_rows = [("f  c2 on the flip-averaged mesh (TTA)", summary(tta_mesh["p0"], y, mesh_tta_sel, fold),
                 flip_check(tta_mesh["p0"][mesh_tta_sel], tta_mesh["p1"][mesh_tta_sel])),
                ("   c2 without TTA, same faces", summary(c2r["p0"], y, mesh_tta_sel, fold),
                 flip_check(c2r["p0"][mesh_tta_sel], c2r["p1"][mesh_tta_sel]))]
    for label, *_ in KP_OPTIONS:
        r = results[label]
        kp_rows.append((label, summary(r["p0"], y, found_sel, fold), summary(r["p0"], y, mesh_sel, fold),
                        summary(r["p0"], y, kp_only, fold) if kp_only.any() else None,
                        flip_check(r["p0"][found_sel], r["p1"][found_sel])))

    kc2r = results[KP_OPTIONS[4][0]]
    kp_tta_rows = [("kd1 kc1 (shipped) on flip-averaged keypoints + box", summary(tta_kp1["p0"], y, kp_tta_sel, fold),
                    flip_check(tta_kp1["p0"][kp_tta_sel], tta_kp1["p1"][kp_tta_sel])),
                   ("kd1 on the real keypoint-only faces", summary(tta_kp1["p0"], y, kp_tta_sel & kp_only, fold), None),
                   ("kd kc2 on flip-averaged keypoints + box (TTA)", summary(tta_kp["p0"], y, kp_tta_sel, fold),
                    flip_check(tta_kp["p0"][kp_tta_sel], tta_kp["p1"][kp_tta_sel])),
                   ("   kc2 without TTA, same faces", summary(kc2r["p0"], y, kp_tta_sel, fold),
                    flip_check(kc2r["p0"][kp_tta_sel], kc2r["p1"][kp_tta_sel])),
                   ("kd on the mesh faces", summary(tta_kp["p0"], y, kp_tta_sel & mesh_sel, fold), None)]
    if (kp_tta_sel & kp_only).any():
        kp_tta_rows.append(("kd on the real keypoint-only faces", summary(tta_kp["p0"], y, kp_tta_sel & kp_only, fold), None))
    # the shipped pipeline on every found face: mesh -> c2, keypoint-only -> kc1; vs stored and dlib
    c2, kc1 = results[MESH_OPTIONS[5][0]], results[KP_OPTIONS[3][0]]
    # (a mesh-failed face's keypoints are averaged with the mirrored image's detection, as the backend does)
    pipe = np.where(f["has_mesh"][:, :1], c2["p0"], np.where(kp_tta_sel[:, None], tta_kp1["p0"], kc1["p0"]))
    pipe1 = np.where(f["has_mesh"][:, 1:], c2["p1"], np.where(kp_tta_sel[:, None], tta_kp1["p1"], kc1["p1"]))
    pipe_tta = np.where(mesh_tta_sel[:, None], tta_mesh["p0"],
                        np.where(f["has_mesh"][:, :1], c2["p0"], np.where(kp_tta_sel[:, None], tta_kp1["p0"], kc1["p0"])))
    stored = f["pose_stored"][:, 0]
    dlib_pose = dl["pose"]
    dlib_sel = keep & np.isfinite(dlib_pose).all(1)
    both = dlib_sel & found_sel

    ay = np.abs(y_all[:, 0])
    lines = []
    best, bestk = mesh_rows[5][1], kp_rows[3][1]
    pipe_s = summary(pipe, y, found_sel, fold)
    flip_c2 = mesh_rows[5][2]
    lines += [
        "Head pose fitted on real faces (issue 25): AFLW2000-3D half (../shared/groundtruth/aflw2000, 984 images,",
        f"all with |angles| <= 99: {keep.sum()} kept), default analyzer (mediapipe), 5-fold CV by image (seed {args.seed}).",
        "",
        "SHIPPED (curate/core/pose.py, weights curate/data/pose/pose_aflw.npz from --save)",
        f"  Faces with a mesh: option c2. CV MAE {best['mae']:.2f} ± {best['sd']:.2f} (fold SD), yaw/pitch/roll "
        f"{best['angles'][0]:.2f}/{best['angles'][1]:.2f}/{best['angles'][2]:.2f}; yaw MAE by |yaw| "
        + " / ".join(f"{e:.2f}" for e, _ in best["bins"]) + f" (0-30 / 30-60 / 60-99), n = {best['n']}.",
        f"  Keypoint-only faces: option kc1 (kc2's kernel would ship its training rows). CV MAE {bestk['mae']:.2f} ± {bestk['sd']:.2f} on all {bestk['n']} found "
        f"faces' keypoints (yaw/pitch/roll {bestk['angles'][0]:.2f}/{bestk['angles'][1]:.2f}/{bestk['angles'][2]:.2f},"
        f" yaw 30-60 {bestk['bins'][1][0]:.2f}); {kp_rows[3][2]['mae']:.2f} on the mesh faces' keypoints; kc2 with flip TTA (kd)"
        f" {kp_tta_rows[2][1]['mae']:.2f}; the shipped kc1 so (kd1, the backend averages a mesh-failed face's keypoints with the mirrored image's) {kp_tta_rows[0][1]['mae']:.2f}.",
        f"  Whole pipeline (c2, else kc1 on flip-averaged keypoints) on all {pipe_s['n']} found faces: MAE {pipe_s['mae']:.2f}, yaw/pitch/roll "
        f"{pipe_s['angles'][0]:.2f}/{pipe_s['angles'][1]:.2f}/{pipe_s['angles'][2]:.2f} (stored today: "
        f"{summary(stored, y, found_sel, fold)['mae']:.2f}).",
        f"  Flip symmetry of c2 on the real mirrored images: median |yaw + yaw'| {flip_c2['median'][0]:.2f}, |roll + roll'|"
        f" {flip_c2['median'][2]:.2f}; {100 * flip_c2['within3']:.1f} % of faces within 3 deg on both (exact on the"
        " mirrored mesh by construction: the model is fitted on exact mirrored copies).",
        "  Most of the gain is free: reading the canonical fit's rotation in AFLW's Euler order (b0) instead of",
        "  pose_from_rotation (a2) cuts roll 5.3 -> 3.0 and pitch 5.4 -> 5.3 with no fitting; and the render",
        "  calibration (MESH_*_KNOTS) makes real faces worse (a vs a2): drop it.",
        f"  Keypoints: BlazeFace's keypoints move with a mirror (kc2 flip: only {100 * kp_rows[4][4]['within3']:.0f} % within 3 deg). "
        "Averaging them (and the box)",
        "  with the detection of the mirrored image, mirrored back (flip TTA, kd), makes the pose exactly symmetric and",
        f"  cuts keypoint MAE {kp_tta_rows[3][1]['mae']:.2f} -> {kp_tta_rows[2][1]['mae']:.2f} on the same faces, same weights: "
        "worth one extra BlazeFace run per",
        "  frame where a face's mesh fails (a backend change: the lead's call). For meshes TTA buys symmetry only",
        f"  ({tta_rows[1][1]['mae']:.2f} -> {tta_rows[0][1]['mae']:.2f}); without it {100 * flip_c2['within3']:.1f} % of mirrored faces"
        " are within 3 deg.",
        f"  Caveat: the {kp_only.sum()} real keypoint-only faces here (mesh failed: profiles, extreme pitch) stay poor with every"
        f" option (kc2 MAE {kp_rows[4][3]['mae']:.1f}, stored {kp_rows[0][3]['mae']:.1f});",
        "  the keypoint CV figures describe keypoints of faces the mesh could also place.",
        f"  Detection: {100 * found_sel.sum() / keep.sum():.1f} % of images' faces found (target 97 %): the misses are"
        " mostly |yaw| > 60 (table below).",
        "",
        "  In curate/core/pose.py: pose_from_rotation reads AFLW's Euler order (rotation_from_pose its inverse);",
        "  pose_from_mesh = c2 (mesh_pose_inputs), pose_from_keypoints(keypoints, bbox) = kc1 (keypoint_pose_inputs),",
        "  pose_from_landmarks = d (stored faces without their 3D mesh: `faceset pose` recomputes from the 68 points).",
        "",
        f"Signs checked on the data: corr(raw mesh fit, AFLW label) yaw {corr[0]:+.3f} (opposite, as README says), "
        f"pitch {corr[1]:+.3f}, roll {corr[2]:+.3f} (same).",
        f"Time: feature extraction {float(f['seconds']):.0f} s for {len(files)} images x 2 (as is + mirrored) on 1 CPU"
        f" thread (OpenCV DNN engine: no GPU), dlib pass {float(dl['seconds']):.0f} s; geometry {derive_s:.0f} s;"
        f" all CV fits {cv_s:.0f} s.",
        "",
        f"FACES WITH A MESH (n = {mesh_sel.sum()}; CV predictions, training folds + their exact mirrors)",
        head + fliphead,
    ]
    lines += [_row(*row) for row in mesh_rows]
    lines += [f"  flip test-time augmentation (the image analysed mirrored too, the two meshes averaged; faces meshed in"
              f" both, n = {mesh_tta_sel.sum()}; the c2 weights unchanged):"]
    lines += [_row(*row) for row in tta_rows]
    lines += [
        "",
        "KEYPOINT POSE (6 BlazeFace keypoints + box, used even where a mesh exists)",
        f"  on all found faces (n = {found_sel.sum()}):",
        head + fliphead,
    ]
    lines += [_row(label, s, fl) for label, s, _, _, fl in kp_rows]
    lines += [f"  flip test-time augmentation (keypoints and box averaged with the mirrored image's detection, mirrored"
              f" back; faces found in both, n = {kp_tta_sel.sum()}; the kc2 weights unchanged):"]
    lines += [_row(*row) for row in kp_tta_rows]
    lines += [f"  on the mesh faces (n = {mesh_sel.sum()}, comparable with the table above):", head]
    lines += [_row(label, s) for label, _, s, _, _ in kp_rows]
    if kp_only.any():
        lines += [f"  on the real keypoint-only faces (mesh failed, n = {kp_only.sum()}; few, mostly profiles):", head]
        lines += [_row(label, s) for label, _, _, s, _ in kp_rows]
    lines += [
        "",
        "PIPELINE vs STORED vs DLIB BACKEND (yaw MAE per |true yaw| bin; each on the faces it finds)",
        head,
        _row("stored today (face_pose), all found", summary(stored, y, found_sel, fold)),
        _row("c2 / kc1 (shipped), all found", pipe_s, flip_check(pipe[found_sel], pipe1[found_sel])),
        _row("c2 / kc1, both with flip TTA, all found", summary(pipe_tta, y, found_sel, fold)),
        _row("dlib backend (HOG + 68 + estimate_pose)", summary(dlib_pose, y, dlib_sel, fold)),
        _row("c2 / kc1 on the faces dlib also finds", summary(pipe, y, both, fold)),
        _row("dlib backend on the same faces", summary(dlib_pose, y, both, fold)),
        "",
        "DETECTION (central face found by the default analyzer) per |true yaw| bin",
        f"{'|yaw|':8s} {'images':>6s} {'found':>6s} {'mesh':>6s} {'dlib':>6s}",
    ]
    for lo, hi in BINS:
        s = keep & (ay >= lo) & (ay < hi)
        lines.append(f"{lo:2d}-{min(hi, 99):2d}    {s.sum():6d} {(s & found_sel).sum():6d} {(s & mesh_sel).sum():6d} "
                     f"{(s & dlib_sel).sum():6d}")
    lines.append(f"all      {keep.sum():6d} {found_sel.sum():6d} {mesh_sel.sum():6d} {dlib_sel.sum():6d}   "
                 f"found {100 * found_sel.mean():.1f} %, mesh {100 * mesh_sel.mean():.1f} %, dlib {100 * dlib_sel.mean():.1f} %")
    miss = keep & ~found_sel
    lines.append(f"missed: {miss.sum()} images, |yaw| > 60 in {(miss & (ay >= 60)).sum()}, |pitch| > 30 in "
                 f"{(miss & (np.abs(aflw[:, 1]) > 30)).sum()}, |roll| > 30 in {(miss & (np.abs(aflw[:, 2]) > 30)).sum()}; "
                 f"images with 2+ faces: {(f['n_faces'][:, 0] > 1).sum()} (central one kept)")
    lines += [
        "",
        "PUBLISHED on AFLW2000 (all 1969 images, dataset face boxes, trained on 300W-LP)",
        f"{'method':20s} {'yaw':>5s} {'pitch':>5s} {'roll':>5s} {'MAE':>5s}",
    ]
    lines += [f"{n:20s} {a:5.2f} {b:5.2f} {c:5.2f} {m:5.2f}" for n, a, b, c, m in PUBLISHED]
    lines += [
        "",
        "Notes: CV figures are on this half only (fitted and tested on AFLW's labels, whose pitch is noisy at",
        "|pitch| > 30); published figures use every image with the dataset's own boxes, ours only the faces the",
        "detector finds (profiles it misses are the hardest). Columns: n = faces scored; ±fold = SD of the MAE",
        "over the 5 folds; flip = the same option on the mirrored image (analysed again, its own detection and",
        "mesh) against the exact mirror of the original's pose.",
    ]
    lines += ["", *faceswap_degrees(f, y_all, mesh_sel), "", *retry_check(files, args.data, f, y_all, keep, pipe_s)]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import emit

    emit(lines, args.out)


def retry_check(files: list[str], data: Path, f: dict[str, np.ndarray], y: np.ndarray, keep: np.ndarray,
                pipe: dict) -> list[str]:
    """The images the cached pass found no face in, analysed by the current backend (which looks again, zoomed
    out, at an image without faces): how many are found now and their error with the shipped weights (these
    faces were never among the fitted ones)."""
    from curate.analysis.registry import create_analyzer
    from curate.analysis.frame import face_pose

    an = create_analyzer("mediapipe")
    idx = np.flatnonzero(keep & ~f["found"][:, 0])
    errs, meshed = [], 0
    for i in idx:
        rgb = cv2.cvtColor(cv2.imread(str(data / files[i])), cv2.COLOR_BGR2RGB)
        face = central_face(an.analyze(rgb), rgb.shape)
        if face is not None:
            meshed += face.mesh is not None
            errs.append(np.abs(np.array(face_pose(face)) - y[i]))
    e = np.array(errs).reshape(-1, 3)
    found = int((keep & f["found"][:, 0]).sum()) + len(e)
    mae = (pipe["mae"] * pipe["n"] + e.mean(axis=1).sum()) / max(pipe["n"] + len(e), 1)
    return [f"LOOKING AGAIN where no face was found (the backend's zoomed-out retry): {len(e)} of the {len(idx)} missed",
            f"  faces found now ({meshed} with a mesh; median |true yaw| {np.median(np.abs(y[idx, 0])):.0f}); their MAE "
            f"yaw/pitch/roll {'/'.join(f'{v:.2f}' for v in e.mean(axis=0)) if len(e) else '-'}. Faces found: {found} of "
            f"{int(keep.sum())} = {100 * found / keep.sum():.1f} %; the whole pipeline's MAE with them: {mae:.2f}."]


def faceswap_degrees(f: dict[str, np.ndarray], y: np.ndarray, sel: np.ndarray) -> list[str]:
    """faceswap's own pose estimator (curate.interop.faceswap.geometry.pitch_yaw_roll: solvePnP of the aligned
    landmarks against its 26-point head) on the same faces' 68 points, against the labels (|yaw| < 60)."""
    from curate.interop.faceswap.geometry import pitch_yaw_roll

    idx = np.flatnonzero(sel & (np.abs(y[:, 0]) < 60))
    fs = np.array([pitch_yaw_roll(f["lm68"][i, 0]) for i in idx])
    out = [f"FACESWAP'S DEGREES on the same {len(idx)} faces (|yaw| < 60; its estimator on faceset's 68 points):"]
    for j, (name, col) in enumerate((("yaw", 1), ("pitch", 0), ("roll", 2))):
        corr = float(np.corrcoef(fs[:, col], y[idx, j])[0, 1])
        sign = 1.0 if corr >= 0 else -1.0
        slope, bias = np.polyfit(y[idx, j], sign * fs[:, col], 1)
        out.append(f"  {name:5s} correlation with the truth {corr:+.3f} (sign {'same as' if sign > 0 else 'opposite to'}"
                   f" faceset's); sign-corrected slope {slope:.2f}, bias {bias:+.1f}, MAE "
                   f"{np.abs(sign * fs[:, col] - y[idx, j]).mean():.2f}")
    out.append("  (faceswap takes the pose of the aligned face, whose in-plane rotation is removed: its roll is ~0)")
    return out


if __name__ == "__main__":
    main()
