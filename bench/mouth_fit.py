"""Mouth open vs closed on small real faces, learned without hand labels (``bench/mouth_features.py``; nothing of it ships: it does not hold on real video).

    .venv/bin/python bench/mouth_fit.py [--cache /tmp/mouth] [--refresh] [--save /tmp/mouth/mouth_lr.npz]

~3 min to analyse and degrade the photos and read the datasets (cached), ~6 min of fits on 2 cores.

Training data (research photos, read in place, nothing of them is copied into the project):
``../shared/groundtruth/aflw2000/*.jpg`` (AFLW2000-3D, 984 faces, many open mouths, all poses) and
``../shared/groundtruth/genki4k/img`` (1000 GENKI-4K web photos, mostly closed mouths and smiles). Each image
goes through faceset's default analyzer (``create_analyzer("mediapipe")``); the largest face with a mesh is kept.

Labels (self-supervised, no hand labels): on a face at least ``MIN_FACE`` px wide, seen within ``MAX_YAW_TRAIN``
degrees of frontal, the mesh's inner-lip gap / mouth width (``mesh_expression_ratios``' ``mouth_gap``, pose
removed) is reliable: >= ``OPEN_GAP`` is open, <= ``CLOSED_GAP`` closed, the middle is dropped.

Degradation: each labelled photo is shrunk (INTER_AREA) so that its face is 25-130 px wide (log-uniform), then
optionally blurred and JPEG-compressed, padded, and analysed again as a video frame would be; the face's aligned
256 px crop and its mesh are made exactly as ``curate/analysis/frame.py`` stores them (``alignment_matrix`` on the new
68 points, ``warp_face``, mesh in crop pixels). The label stays the one of the sharp face. Features are
``mouth_features.mouth_features`` on that crop (the shared implementation), plus its mirror.

Options: patch anchored on the mesh's mouth corners or at the mean face's corners in the crop (mesh-free);
feature sets patch / darkness / both; training on every pseudo-labelled face or only on those faceset's smile
model calls non-smiling (P(smile) < 0.5: the only faces the mouth score decides at inference); sharp+degraded
or sharp only. C by 5-fold cross-validation grouped by photo on the training data only (AUC on held-out degraded
non-smiles); the decision threshold is the training CV's best balanced-accuracy logit. The chosen option (best
CV AUC) is also tried relative to its track (minus the track's 20th percentile over every face of the track),
and with thresholds chosen on tune; tune has only 3 neutral faces, so its thresholds degenerate to "open".

Result (bench/out/mouth_fit.txt): the learned scores do not transfer. CV AUC 0.97 on degraded photos, but on
the test videos AUC open/neutral 0.41 pooled (0.75 classroom, 0.57 crowd) and 3-class agreement 0.62, below the
stored label (0.655) and the trivial "every non-smile is mouth_open" (0.70). No model is shipped.

Evaluation: hand labels ``bench/labels/expressions_video.json``, split by video: tune = short_hamilton_clip +
single_performer, test = classroom + crowd. Test chooses nothing; it is only reported. Each labelled face is
scored from its stored crop (``filepath``) and stored ``mesh``, as faceset would at inference. The 3-class rule:
|yaw| > 45 -> unsure (excluded, reported as coverage); stored ``smile`` >= 0.5 -> smile; else P(open) >= t ->
mouth_open; else neutral. Baseline: the stored ``expression.label`` under the same exclusion (eyes_closed and
brows_raised count as neutral). Video features are cached under ``--cache`` too (every face of the four
datasets, for the track statistics).
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
import zlib
from collections import Counter
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import torch

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from report import emit  # noqa: E402

from curate.core.align import alignment_matrix, transform_points, warp_face  # noqa: E402
from curate.core.expression import mesh_expression_ratios  # noqa: E402
from mouth_features import DARK_NAMES, PATCH_H, PATCH_W, grey_features, grey_image, mouth_features  # noqa: E402
from curate.core.pose import pose_from_mesh  # noqa: E402

SHARED = ROOT.parent / "shared" / "groundtruth"
SOURCES = {"aflw2000": SHARED / "aflw2000", "genki4k": SHARED / "genki4k" / "img"}
LABELS = ROOT / "bench" / "labels" / "expressions_video.json"
VIDEOS = ("short_hamilton_clip", "single_performer", "classroom", "crowd")
SPLIT = {"short_hamilton_clip": "tune", "single_performer": "tune", "classroom": "test", "crowd": "test"}
MOUTH = ("neutral", "smile", "mouth_open")
SEED = 0
MIN_FACE = 80.0  # px: the mesh's lip gap is trusted on sharp photos of faces at least this big ...
MAX_YAW_TRAIN = 50.0  # ... and this close to frontal
OPEN_GAP, CLOSED_GAP = 0.10, 0.04  # mouth_gap (pose removed) of a surely open / surely closed mouth
DEGRADED_PER_FACE = 3
SIZE_RANGE = (25.0, 130.0)
MAX_YAW = 45.0  # faceset's unsure limit
SMILE_T = 0.5


def _face_size(landmarks: np.ndarray) -> float:
    """faceset's face size: the larger side of the 68 points' box."""
    return float(np.ptp(np.asarray(landmarks), axis=0).max())


def _largest(faces: list) -> object | None:
    """The largest analysed face that has a mesh and good landmarks."""
    good = [f for f in faces if f.mesh is not None and f.landmarks_ok]
    return max(good, key=lambda f: _face_size(f.landmarks)) if good else None


def _read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8."""
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def analyse_photos(cache: Path, refresh: bool) -> dict[str, np.ndarray]:
    """Analyse every training photo once (cached): path, source, 68 points, mesh, face size, yaw, mouth gap."""
    out = cache / "photos.npz"
    if out.exists() and not refresh:
        with np.load(out, allow_pickle=False) as d:
            return dict(d)
    from curate.analysis.registry import create_analyzer

    an = create_analyzer("mediapipe")
    rows: dict[str, list] = {k: [] for k in ("path", "source", "landmarks", "mesh", "size", "yaw", "gap")}
    for source, folder in SOURCES.items():
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
            face = _largest(an.analyze(_read_rgb(path)))
            if face is None:
                continue
            rows["path"].append(str(path))
            rows["source"].append(source)
            rows["landmarks"].append(np.asarray(face.landmarks, np.float32))
            rows["mesh"].append(np.asarray(face.mesh, np.float32))
            rows["size"].append(_face_size(face.landmarks))
            rows["yaw"].append(pose_from_mesh(face.mesh).yaw)
            rows["gap"].append(mesh_expression_ratios(np.asarray(face.mesh, np.float64))["mouth_gap"])
    data = {k: np.asarray(v) for k, v in rows.items()}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(out, **data)
    return data


def photo_smiles(photos: dict[str, np.ndarray], cache: Path, refresh: bool) -> np.ndarray:
    """faceset's P(smile) of each training photo's face (learned smile: mesh + emotion logits; cached)."""
    out = cache / "smiles.npy"
    if out.exists() and not refresh:
        return np.load(out, allow_pickle=False)
    from curate.analysis.expression import face_logits
    from curate.core.expression import learned_smile

    p = np.array([learned_smile(np.asarray(mesh, np.float64), None, face_logits(_read_rgb(Path(str(path))), lm))
                  for path, mesh, lm in zip(photos["path"], photos["mesh"], photos["landmarks"])])
    np.save(out, p)
    return p


def pseudo_labels(photos: dict[str, np.ndarray]) -> np.ndarray:
    """1 open, 0 closed, -1 unused: the sharp mesh's lip gap on large near-frontal faces."""
    ok = (photos["size"] >= MIN_FACE) & (np.abs(photos["yaw"]) <= MAX_YAW_TRAIN)
    y = np.full(len(ok), -1)
    y[ok & (photos["gap"] >= OPEN_GAP)] = 1
    y[ok & (photos["gap"] <= CLOSED_GAP)] = 0
    return y


def degrade(rgb: np.ndarray, scale: float, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
    """Shrink (INTER_AREA), maybe blur and JPEG-compress an image, as a small face in a video frame ends up."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(round(w * scale), 8), max(round(h * scale), 8)), interpolation=cv2.INTER_AREA)
    sigma = float(rng.uniform(0.3, 1.0)) if rng.random() < 0.5 else 0.0
    if sigma:
        small = cv2.GaussianBlur(small, (0, 0), sigma)
    quality = int(rng.integers(30, 91)) if rng.random() < 0.7 else 0
    if quality:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        small = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return small, {"sigma": sigma, "jpeg": float(quality)}


def stored_view(rgb: np.ndarray, face: object) -> tuple[np.ndarray, np.ndarray]:
    """The aligned 256 px crop and the mesh in crop pixels, as ``curate/analysis/frame.py`` stores a face."""
    matrix = alignment_matrix(face.landmarks)
    return warp_face(rgb, matrix), transform_points(np.asarray(face.mesh)[:, :2], matrix)


def _features_both(crop: np.ndarray, mesh_xy: np.ndarray) -> np.ndarray:
    """Features of a crop and of its mirror (2 x F)."""
    return np.stack([mouth_features(crop, mesh_xy), mouth_features(crop, mesh_xy, mirror=True)])


def build_training(photos: dict[str, np.ndarray], cache: Path, refresh: bool) -> dict[str, np.ndarray]:
    """Sharp and degraded training samples of the pseudo-labelled photos (cached): features, label, photo, size."""
    out = cache / "train.npz"
    if out.exists() and not refresh:
        with np.load(out, allow_pickle=False) as d:
            return dict(d)
    from curate.analysis.registry import create_analyzer

    an = create_analyzer("mediapipe")
    rng = np.random.default_rng(SEED)
    y_all = pseudo_labels(photos)
    rows: dict[str, list] = {k: [] for k in ("x", "y", "photo", "size", "degraded", "gap", "sigma", "jpeg",
                                             "grey", "mesh_xy")}
    lost = 0
    for i in np.flatnonzero(y_all >= 0):
        rgb = _read_rgb(Path(str(photos["path"][i])))
        face = _largest(an.analyze(rgb))
        if face is None:
            lost += 1
            continue
        crop, mesh_xy = stored_view(rgb, face)
        views = [(crop, mesh_xy, photos["size"][i], 0, photos["gap"][i], 0.0, 0.0)]
        lm = photos["landmarks"][i]
        for _ in range(DEGRADED_PER_FACE):
            lo, hi = np.log(SIZE_RANGE[0]), np.log(min(SIZE_RANGE[1], photos["size"][i]))
            size = float(np.exp(rng.uniform(lo, hi)))
            small, how = degrade(rgb, size / photos["size"][i], rng)
            pad = int(2 * size)
            fill = [int(v) for v in small.reshape(-1, 3).mean(0)]
            canvas = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill)
            want = lm.mean(0) * (size / photos["size"][i]) + pad
            found = [f for f in an.analyze(canvas) if f.mesh is not None and f.landmarks_ok
                     and np.linalg.norm(f.landmarks.mean(0) - want) < 0.3 * size]
            if not found:
                lost += 1
                continue
            f = found[0]
            crop_d, mesh_d = stored_view(canvas, f)
            gap_d = mesh_expression_ratios(np.asarray(f.mesh, np.float64))["mouth_gap"]
            views.append((crop_d, mesh_d, _face_size(f.landmarks), 1, gap_d, how["sigma"], how["jpeg"]))
        for crop_v, mesh_v, size_v, deg, gap_v, sigma, jpeg in views:
            rows["x"].append(_features_both(crop_v, mesh_v))
            rows["grey"].append(grey_image(crop_v).astype(np.uint8))
            rows["mesh_xy"].append(np.asarray(mesh_v, np.float32))
            rows["y"].append(y_all[i])
            rows["photo"].append(i)
            rows["size"].append(size_v)
            rows["degraded"].append(deg)
            rows["gap"].append(gap_v)
            rows["sigma"].append(sigma)
            rows["jpeg"].append(jpeg)
    data = {k: np.asarray(v) for k, v in rows.items()}
    data["lost"] = np.asarray(lost)
    np.savez(out, **data)
    return data


def _dec(b: bytes | None) -> np.ndarray | None:
    """A FiftyOne vector field as stored (zlib .npy bytes)."""
    return None if b is None else np.load(BytesIO(zlib.decompress(b)), allow_pickle=False)


def video_faces(cache: Path, refresh: bool) -> list[dict]:
    """Every face of the four gt_* datasets (read only): stored scores, label, pose, track, and mouth features
    from the stored crop and mesh; hand labels attached where there are (cached)."""
    out = cache / "video.pkl"
    if out.exists() and not refresh:
        return pickle.loads(out.read_bytes())
    from PIL import Image

    from curate.dataset.store import load_dataset, read_columns

    hand = {f["face_key"]: f for f in json.loads(LABELS.read_text())["faces"]}
    faces = []
    for video in VIDEOS:
        ds = load_dataset(f"gt_{video}")
        cols = read_columns(ds, ["face_key", "filepath", "track", "frame", "yaw", "smile", "mouth_open", "mesh",
                                 "face_size"])
        stored = dict(zip(ds.values("face_key"), ds.values("expression.label")))
        for i, key in enumerate(cols["face_key"]):
            mesh = _dec(cols["mesh"][i])
            f = {"key": key, "video": video, "split": SPLIT[video], "track": cols["track"][i],
                 "yaw": float(cols["yaw"][i]), "smile": cols["smile"][i], "mouth_open": cols["mouth_open"][i],
                 "face_size": float(cols["face_size"][i]), "stored": stored.get(key),
                 "hand": hand[key]["mouth"] if key in hand else None, "x": None}
            if mesh is not None:
                crop = np.asarray(Image.open(cols["filepath"][i]).convert("RGB"))
                f["x"] = _features_both(crop, mesh.reshape(-1, 2).astype(np.float64) * crop.shape[1])
                f["grey"] = grey_image(crop).astype(np.uint8)
                f["mesh_xy"] = mesh.reshape(-1, 2).astype(np.float32) * crop.shape[1]
            faces.append(f)
    out.write_bytes(pickle.dumps(faces))
    return faces


# --- fitting -------------------------------------------------------------------------------------------------

N_PATCH = PATCH_H * PATCH_W
FEATURE_SETS = {  # columns of mouth_features: the patch, then DARK_NAMES
    "patch+dark": np.arange(N_PATCH + len(DARK_NAMES)),
    "patch": np.arange(N_PATCH),
    "dark": np.arange(N_PATCH, N_PATCH + len(DARK_NAMES)),
    "patch+strip": np.r_[np.arange(N_PATCH), N_PATCH + 1, N_PATCH + 2],  # no mesh polygon: mesh-free with anchor crop
}
C_GRID = (0.001, 0.01, 0.1)  # 1.0 was never better on the non-smiles (0.947 for patch+dark)
FOLDS = 5


def features_of(greys: list[np.ndarray], meshes: list[np.ndarray], anchor: str) -> np.ndarray:
    """Features of cached grey crops and their meshes, with the face's mirror: (N, 2, F)."""
    return np.stack([np.stack([grey_features(g.astype(np.float32), m.astype(np.float64), flip, anchor)
                               for flip in (False, True)]) for g, m in zip(greys, meshes)])


def _fit_lr(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Balanced logistic regression on standardised features; weights and bias on the raw features."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(0), x.std(0) + 1e-6
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=3000).fit((x - mean) / scale, y)
    w = lr.coef_[0] / scale
    return w, float(lr.intercept_[0] - w @ mean)


def fit_views(x2: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Fit on both mirror views of each sample ((N, 2, F) features)."""
    return _fit_lr(x2.reshape(-1, x2.shape[2]), np.repeat(y, 2), c)


def _logits(x2: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    """Mirror-averaged log-odds of samples given as (N, 2, F)."""
    return (x2 @ w + b).mean(1)


def cross_validate(x2: np.ndarray, y: np.ndarray, groups: np.ndarray, rows: np.ndarray, c: float) -> np.ndarray:
    """Out-of-fold mirror-averaged logits of every sample (folds grouped by photo), each fold fitted on ``rows``."""
    from sklearn.model_selection import GroupKFold

    out = np.zeros(len(y))
    for tr, te in GroupKFold(FOLDS).split(x2, y, groups):
        tr = tr[rows[tr]]
        w, b = fit_views(x2[tr], y[tr], c)
        out[te] = _logits(x2[te], w, b)
    return out


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC (nan with one class)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, bool)
    return float(roc_auc_score(y, s)) if 0 < np.sum(y) < len(y) else float("nan")


def best_threshold(y: np.ndarray, s: np.ndarray) -> float:
    """The score threshold with the best balanced accuracy (training data only)."""
    cands = np.unique(s)
    bal = [(np.mean(s[y == 1] >= t) + np.mean(s[y == 0] < t)) / 2 for t in cands]
    return float(cands[int(np.argmax(bal))])


# --- the 3-class rule on the video faces -----------------------------------------------------------------------

def rule_labels(faces: list[dict], p_open: np.ndarray, t: float) -> list[str]:
    """unsure past |yaw| 45, smile at stored smile >= 0.5, else mouth_open at score >= t, else neutral."""
    out = []
    for f, p in zip(faces, p_open):
        if abs(f["yaw"]) > MAX_YAW:
            out.append("unsure")
        elif f["smile"] >= SMILE_T:
            out.append("smile")
        else:
            out.append("mouth_open" if p >= t else "neutral")
    return out


def baseline_labels(faces: list[dict]) -> list[str]:
    """The stored label, unsure past |yaw| 45, eyes_closed / brows_raised counted as neutral."""
    out = []
    for f in faces:
        s = f["stored"]
        out.append("unsure" if abs(f["yaw"]) > MAX_YAW else s if s in ("smile", "mouth_open") else "neutral")
    return out


def agreement(faces: list[dict], pred: list[str]) -> tuple[float, int, int]:
    """Share of hand-labelled (neutral/smile/mouth_open) faces the rule labels as the hand did; covered, all."""
    pairs = [(f["hand"], p) for f, p in zip(faces, pred) if f["hand"] in MOUTH]
    cov = [h == p for h, p in pairs if p != "unsure"]
    return float(np.mean(cov)), len(cov), len(pairs)


def agreement_lines(name: str, faces: list[dict], pred: list[str], scores: np.ndarray | None,
                    confusion: bool = True) -> list[str]:
    """Agreement, coverage, open-vs-neutral AUC (covered faces; per video) and the confusion of one rule."""
    agree, n_cov, n = agreement(faces, pred)
    line = f"  {name:50s} agreement {agree:.3f}  coverage {n_cov}/{n} = {n_cov / n:.2f}"
    if scores is not None:
        on = [i for i, (f, p) in enumerate(zip(faces, pred))
              if f["hand"] in ("neutral", "mouth_open") and p != "unsure"]
        y = np.array([faces[i]["hand"] == "mouth_open" for i in on])
        s = np.asarray(scores)[on]
        vids = np.array([faces[i]["video"] for i in on])
        line += f"  AUC open/neutral {_auc(y, s):.3f} (" + ", ".join(
            f"{v} {_auc(y[vids == v], s[vids == v]):.2f}" for v in dict.fromkeys(vids)) + ")"
    lines = [line]
    if confusion:
        c = Counter((f["hand"], p) for f, p in zip(faces, pred) if f["hand"] in MOUTH and p != "unsure")
        lines.append("      hand \\ rule " + "".join(f"{m:>11s}" for m in MOUTH))
        lines += [f"      {h:11s}" + "".join(f"{c[(h, p)]:11d}" for p in MOUTH) for h in MOUTH]
    return lines


def track_relative(faces: list[dict], score: np.ndarray, q: float = 20.0) -> np.ndarray:
    """Each face's score minus the q-th percentile of its track's scores (every face of the track with a mesh)."""
    keys = [(f["video"], f["track"]) for f in faces]
    ref: dict[tuple, float] = {}
    for k in set(keys):
        vals = [v for kk, v in zip(keys, score) if kk == k and np.isfinite(v)]
        ref[k] = float(np.percentile(vals, q)) if vals else 0.0
    return np.array([v - ref[k] for k, v in zip(keys, score)])


def evaluate(name: str, faces: list[dict], scores: np.ndarray, t: float, confusion: bool = True) -> list[str]:
    """The rule with these scores and threshold, on tune and on test."""
    lines = []
    for split in ("tune", "test"):
        idx = [i for i, f in enumerate(faces) if f["split"] == split and f["hand"] is not None]
        sub = [faces[i] for i in idx]
        s = np.nan_to_num(np.asarray(scores, float)[idx], nan=-1e9)
        lines += agreement_lines(f"[{split}] {name}", sub, rule_labels(sub, s, t), s, confusion)
    return lines


def tune_threshold(faces: list[dict], scores: np.ndarray) -> float:
    """The threshold with the best 3-class agreement on the tune videos (ties: the middle one)."""
    idx = [i for i, f in enumerate(faces) if f["split"] == "tune" and f["hand"] is not None]
    sub = [faces[i] for i in idx]
    s = np.nan_to_num(np.asarray(scores, float)[idx], nan=-1e9)
    cands = np.unique(s[np.isfinite(s) & (s > -1e8)])
    cands = np.r_[cands, cands.max() + 1e-6]
    agree = np.array([agreement(sub, rule_labels(sub, s, t))[0] for t in cands])
    best = np.flatnonzero(agree == agree.max())
    return float(cands[best[len(best) // 2]])


# --- the run ---------------------------------------------------------------------------------------------------

def main() -> None:
    """Build, fit, evaluate, report (and save the chosen model with --save)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/mouth"))
    ap.add_argument("--refresh", action="store_true", help="rebuild the cached analyses and features")
    ap.add_argument("--save", type=Path, help="write the chosen model's weights (.npz) here")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "mouth_fit.txt")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    t0 = time.time()
    photos = analyse_photos(args.cache, args.refresh)
    smiles = photo_smiles(photos, args.cache, args.refresh)
    train = build_training(photos, args.cache, args.refresh)
    faces = video_faces(args.cache, args.refresh)
    meshed = [f for f in faces if f["x"] is not None]
    y, deg, photo = train["y"], train["degraded"].astype(bool), train["photo"]
    yp = pseudo_labels(photos)
    non_smile = smiles[photo] < SMILE_T
    lines = [
        f"training photos analysed: {len(photos['path'])} faces with a mesh ("
        + ", ".join(f"{s} {int(np.sum(photos['source'] == s))}" for s in SOURCES) + ")",
        f"pseudo-labels (face >= {MIN_FACE:.0f} px, |yaw| <= {MAX_YAW_TRAIN:.0f}, mesh mouth_gap >= {OPEN_GAP} open, "
        f"<= {CLOSED_GAP} closed, middle dropped): open {int(np.sum(yp == 1))}, closed {int(np.sum(yp == 0))}; "
        + "; ".join(f"{s}: open {int(np.sum((yp == 1) & (photos['source'] == s)))} (of them P(smile) >= 0.5: "
                    f"{int(np.sum((yp == 1) & (photos['source'] == s) & (smiles >= SMILE_T)))}), closed "
                    f"{int(np.sum((yp == 0) & (photos['source'] == s)))} ("
                    f"{int(np.sum((yp == 0) & (photos['source'] == s) & (smiles >= SMILE_T)))})" for s in SOURCES),
        f"samples: {int(np.sum(~deg))} sharp + {int(np.sum(deg))} degraded ({DEGRADED_PER_FACE} tries per photo, "
        f"{int(train['lost'])} lost: face or mesh not found again); degraded face size (re-found) median "
        f"{np.median(train['size'][deg]):.0f} px, 5-95% {np.percentile(train['size'][deg], 5):.0f}-"
        f"{np.percentile(train['size'][deg], 95):.0f}; blurred {np.mean(train['sigma'][deg] > 0):.2f}, "
        f"JPEG {np.mean(train['jpeg'][deg] > 0):.2f}. Classes balanced by weight.",
        "labelled video faces: " + "; ".join(f"{s} " + " ".join(
            f"{m} {sum(1 for f in faces if f['split'] == s and f['hand'] == m)}" for m in MOUTH)
            for s in ("tune", "test")),
        "",
        "== the mesh's lip gap against the pseudo-labels (AUC open vs closed)",
        f"  sharp photos (the label itself)                     {_auc(y[~deg], train['gap'][~deg]):.3f}",
        f"  degraded photos, analysed again: the new mesh's gap {_auc(y[deg], train['gap'][deg]):.3f}"]
    for lo, hi in ((25, 45), (45, 70), (70, 130)):
        k = deg & (train["size"] >= lo) & (train["size"] < hi)
        lines.append(f"     face {lo:3d}-{hi:3d} px ({int(k.sum()):4d} samples)              "
                     f"{_auc(y[k], train['gap'][k]):.3f}")

    x_by_anchor = {"mesh": train["x"], "crop": features_of(list(train["grey"]), list(train["mesh_xy"]), "crop")}
    vx_by_anchor = {"mesh": np.stack([f["x"] for f in meshed]),
                    "crop": features_of([f["grey"] for f in meshed], [f["mesh_xy"] for f in meshed], "crop")}
    lines += ["", f"== cross-validation on the training photos ({FOLDS} folds grouped by photo): AUC on the held-out "
                  f"degraded samples of non-smiling faces (mirror-averaged); C from {C_GRID}"]
    options: dict[tuple, dict] = {}
    pops = {"non-smiles": non_smile, "all": np.ones(len(y), bool)}
    for anchor in ("mesh", "crop"):
        x2 = x_by_anchor[anchor]
        for fset, cols in FEATURE_SETS.items():
            if anchor == "crop" and fset != "patch":
                continue
            for pop, prow in pops.items():
                for tname, trow in (("sharp+degraded", np.ones(len(y), bool)), ("sharp only", ~deg)):
                    if tname == "sharp only" and (fset != "patch+dark" or pop != "non-smiles" or anchor != "mesh"):
                        continue
                    rows = prow & trow
                    res = []
                    for c in C_GRID:
                        oof = cross_validate(x2[:, :, cols], y, photo, rows, c)
                        k = deg & non_smile
                        res.append((_auc(y[k], oof[k]), c, best_threshold(y[k], oof[k])))
                    auc, c, t = max(res, key=lambda r: r[0])
                    key = (anchor, fset, pop, tname)
                    options[key] = {"auc": auc, "c": c, "t": t}
                    lines.append(f"  anchor {anchor:4s} {fset:11s} on {pop:10s} {tname:14s} C {c:<6g} CV AUC {auc:.3f} "
                                 "(by C " + " ".join(f"{r[0]:.3f}" for r in res) + f")  threshold {t:+.2f}")
    k = deg & non_smile
    dark0 = train["x"][:, 0, N_PATCH]
    lines.append(f"  inner_mean_rel alone (no fit), lower = open: CV-free AUC {_auc(y[k], -dark0[k]):.3f}")

    lines += ["", "== video faces. Rule: |yaw| > 45 -> unsure (excluded: coverage); stored smile >= 0.5 -> smile; "
                  "else mouth_open if score >= t; else neutral.",
              "   AUC: open vs neutral among the covered hand-labelled faces (per video in brackets).",
              "   Ceiling of any mouth score with the stored smile (smile >= 0.5 right about smile / not smile):"]
    for split in ("tune", "test"):
        cov = [f for f in faces if f["split"] == split and f["hand"] in MOUTH and abs(f["yaw"]) <= MAX_YAW]
        ok = sum((f["smile"] >= SMILE_T) == (f["hand"] == "smile") for f in cov)
        lines.append(f"   [{split}] {ok}/{len(cov)} = {ok / len(cov):.3f}")
    lines += ["", "-- baseline: the stored expression.label (score: stored mouth_open)"]
    for split in ("tune", "test"):
        sub = [f for f in faces if f["split"] == split and f["hand"] is not None]
        lines += agreement_lines(f"[{split}] stored label", sub, baseline_labels(sub),
                                 np.array([f["mouth_open"] for f in sub]))

    def all_scores(vals: np.ndarray) -> np.ndarray:
        """Scores for every face (nan without a mesh)."""
        out = np.full(len(faces), np.nan)
        out[[i for i, f in enumerate(faces) if f["x"] is not None]] = vals
        return out

    lines += ["", "-- references without a mouth score: every non-smile face mouth_open / every one neutral"]
    lines += evaluate("non-smile -> mouth_open", faces, np.ones(len(faces)), 0.5)
    lines += evaluate("non-smile -> neutral", faces, np.zeros(len(faces)), 0.5, confusion=False)
    lines += ["", "-- learned options (threshold from the training CV: no video label chooses anything)"]
    scores = {}
    for key, o in options.items():
        anchor, fset, pop, tname = key
        rows = pops[pop] & (np.ones(len(y), bool) if tname == "sharp+degraded" else ~deg)
        cols = FEATURE_SETS[fset]
        w, b = fit_views(x_by_anchor[anchor][rows][:, :, cols], y[rows], o["c"])
        o["w"], o["b"] = w, b
        s = all_scores(_logits(vx_by_anchor[anchor][:, :, cols], w, b))
        scores[key] = s
        lines += evaluate(f"{anchor}/{fset}/{pop}/{tname} >= {o['t']:+.2f}", faces, s, o["t"],
                          confusion=key == ("mesh", "patch+dark", "non-smiles", "sharp+degraded"))

    chosen = max((k for k in options if k[2] == "non-smiles" and k[3] == "sharp+degraded"),
                 key=lambda k: options[k]["auc"])
    o = options[chosen]
    rel = track_relative(faces, scores[chosen])
    lines += ["", f"-- chosen by training CV: {'/'.join(chosen)}; relative to its track (score - track's 20th "
                  "percentile, every face of the track)"]
    lines += evaluate(f"track-relative >= {o['t']:+.2f} (training threshold)", faces, rel, o["t"])
    t_rel = tune_threshold(faces, rel)
    lines += evaluate(f"track-relative >= {t_rel:+.2f} (threshold chosen on tune)", faces, rel, t_rel)
    t_abs = tune_threshold(faces, scores[chosen])
    lines += evaluate(f"absolute >= {t_abs:+.2f} (threshold chosen on tune)", faces, scores[chosen], t_abs)

    dark = all_scores(-vx_by_anchor["mesh"][:, 0, N_PATCH])
    lines += ["", "-- no learning: darkness inside the mesh's inner lips (-inner_mean_rel: higher = darker = open), "
                  "threshold chosen on tune"]
    t_d = tune_threshold(faces, dark)
    lines += evaluate(f"-inner_mean_rel >= {t_d:+.3f}", faces, dark, t_d)
    rel_d = track_relative(faces, dark)
    t_rd = tune_threshold(faces, rel_d)
    lines += evaluate(f"-inner_mean_rel - track p20 >= {t_rd:+.3f}", faces, rel_d, t_rd)

    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        full = np.zeros(train["x"].shape[2])
        full[FEATURE_SETS[chosen[1]]] = o["w"]
        np.savez(args.save, weights=full, bias=np.float64(o["b"]), threshold_logit=np.float64(o["t"]),
                 anchor=np.array(chosen[0]), patch_shape=np.array([PATCH_H, PATCH_W]),
                 feature_names=np.array([f"patch{i}" for i in range(N_PATCH)] + list(DARK_NAMES)))
        lines.append(f"\nsaved {'/'.join(chosen)} (C {o['c']:g}) to {args.save}")
    lines.append(f"\n({time.time() - t0:.0f} s)")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
