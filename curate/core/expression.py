"""Facial expression from landmark geometry: continuous scores and one label per face.

Two measurers, one set of scores. With a FaceMesh (the mediapipe backend) the ratios are taken on the 3D mesh
after the canonical face's fit has removed the head pose (:func:`mesh_expression_ratios`), eye openness from
the iris model's eyelid contour; with 68 points (dlib, insightface, imports) on the aligned 2D landmarks
(:func:`expression_ratios`). Each raw ratio is mapped linearly to a score in [0, 1] between a "relaxed" and a
"full" value:

==============  ==========================================================  ============  ============
score           raw ratio                                                   mesh          68 points
==============  ==========================================================  ============  ============
eyes_closed     eyelid gap / eye width (mean of both eyes)                  0.18 -> 0.08  0.22 -> 0.10
                (corner lift: mouth corners' height over the upper lip's inner middle / mouth width)
mouth_open      inner-lip gap / mouth width                                 0.03 -> 0.11  0.10 -> 0.50
smile           mouth width / outer-eye-corner distance + corner lift       0.65 -> 0.79  0.65 -> 0.85
brows_raised    brow-to-upper-lid height / outer-eye-corner distance        0.28 -> 0.36  0.21 -> 0.28
==============  ==========================================================  ============  ============

The mesh ranges were set on the ``tune`` half of the hand-labelled set in ``datasets/expressions``
(``bench/expression_agreement.py`` reports agreement on the held-back half). The label is the first of
``smile``, ``mouth_open``, ``eyes_closed``, ``brows_raised`` whose score reaches its threshold
(:class:`ExpressionThresholds`: 0.5 each, eyes_closed 0.2), else ``neutral`` — or ``unsure`` past |yaw| 45°. Smile comes first because a laugh opens the
mouth and a broad smile narrows the eyes: both stay smiles. Talking and singing open the mouth without the
smile's width and lift, so they are ``mouth_open``. Thresholds are adjustable: pass your own to
:func:`label_expression` or ``--expression-threshold smile=0.6``.

The stored ``smile`` of a face with a mesh is learned, not a ramp (issue 26; ``bench/smile_fit.py``): the
probability of a logistic regression (:class:`SmileModel`, weights in ``curate/data/human/smile_lr.npz``, fitted
on GENKI-4K) on the 12 mirror-symmetric mesh features of :func:`smile_features` and the 7 logits of the Human
emotion network (``curate/analysis/backends/human/emotion.py``) on an upright 64 px crop, averaged with its mirror
(:func:`mesh_expression`). Without the image only the mesh features are used (``smile_lr_geometry.npz``). The
68-point smile keeps its ramp. The image side (the emotion network, the iris model, relabelling a stored
crop) is :mod:`curate.analysis.expression`: this module needs no model but the fitted weights.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np

from curate.core.align import alignment_matrix, transform_points

LABELS = ("neutral", "smile", "mouth_open", "eyes_closed", "brows_raised", "unsure")
# past this |yaw| a face shows too little of its mouth and eyes to judge: labelled "unsure", its scores kept.
# On hand-labelled video faces (bench/expression_video.py) the label agrees 0.62 / 0.75 / 0.45 at |yaw| 0-20 /
# 20-40 / 40+, and 0.10 on profiles.
MAX_YAW = 45.0
SCORE_NAMES = ("smile", "mouth_open", "eyes_closed", "brows_raised")

_RANGES = {
    "eyes_closed": (0.22, 0.10),
    "mouth_open": (0.10, 0.50),
    "smile": (0.65, 0.85),
    "brows_raised": (0.21, 0.28),
}


@dataclass(frozen=True)
class ExpressionThresholds:
    """Score a face must reach for each label; checked in field order."""

    smile: float = 0.5
    mouth_open: float = 0.5
    # a blink narrows the eyelid gap only part of the way in most frames: at 0.2 (mesh eye aspect <= 0.16) real
    # blinks are found with precision / recall 0.78 / 0.41 on the test videos (0.83 / 0.29 at 0.5; chosen on
    # the tune videos, bench/expression_video.py)
    eyes_closed: float = 0.2
    brows_raised: float = 0.5

    @classmethod
    def parse(cls, items: list[str] | None) -> ExpressionThresholds:
        """Build from ``name=value`` strings (e.g. from the CLI)."""
        values = asdict(cls())
        for item in items or []:
            name, sep, value = item.partition("=")
            if not sep or name.strip() not in values:
                raise ValueError(f"bad expression threshold {item!r}: use one of {list(values)}=VALUE")
            values[name.strip()] = float(value)
        return cls(**values)


def _ramp(value: float, relaxed: float, full: float) -> float:
    return float(np.clip((value - relaxed) / (full - relaxed), 0.0, 1.0))


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def expression_ratios(landmarks: np.ndarray) -> dict[str, float]:
    """Raw geometric ratios (eye aspect, mouth gap, mouth width, corner lift, brow height)."""
    pts = transform_points(landmarks, alignment_matrix(landmarks))
    eye_span = _dist(pts[36], pts[45])

    def ear(i: int) -> float:  # eye aspect ratio of the eye starting at landmark i
        return (_dist(pts[i + 1], pts[i + 5]) + _dist(pts[i + 2], pts[i + 4])) / (2 * _dist(pts[i], pts[i + 3]))

    mouth_width = _dist(pts[48], pts[54])
    gap = np.mean([_dist(pts[61], pts[67]), _dist(pts[62], pts[66]), _dist(pts[63], pts[65])])
    # corners against the upper lip's inner middle: opening the jaw moves the lower lip, not this
    lift = (pts[62, 1] - (pts[48, 1] + pts[54, 1]) / 2.0) / mouth_width
    lids = np.r_[pts[[37, 38, 43, 44], 1]].mean()
    brows = pts[17:27, 1].mean()
    return {
        "eye_aspect": (ear(36) + ear(42)) / 2.0,
        "mouth_gap": gap / mouth_width,
        "mouth_width": mouth_width / eye_span,
        "corner_lift": float(lift),
        "brow_height": (lids - brows) / eye_span,
    }


def expression_scores(landmarks: np.ndarray) -> dict[str, float]:
    """Scores in [0, 1] for eyes_closed, mouth_open, smile and brows_raised."""
    return scores_from_ratios(expression_ratios(landmarks), _RANGES)


# Ranges of the mesh measures (relaxed, full), set on the tune split of datasets/expressions: ratios in the
# canonical face's frame (head pose removed), eye openness from the iris model's lids (open eyes 0.25-0.42,
# squinting smiles down to 0.20 on the sample media).
MESH_RANGES = {
    "eyes_closed": (0.18, 0.08),
    "mouth_open": (0.03, 0.11),
    "smile": (0.65, 0.79),
    "brows_raised": (0.28, 0.36),
}


def mesh_expression_ratios(mesh: np.ndarray, eyes: np.ndarray | None = None) -> dict[str, float]:
    """Raw ratios from a 468-point mesh (+ iris eye contours), measured with the head pose removed."""
    from curate.core import mesh as m

    fit = m.fit_canonical(mesh)
    pts = m.frontalise(mesh, fit)
    eye_span = _dist(pts[m.RIGHT_EYE_CORNERS[0]], pts[m.LEFT_EYE_CORNERS[1]])

    def opening(lids: tuple[tuple[int, int], ...], corners: tuple[int, int], points: np.ndarray) -> float:
        gap = np.mean([_dist(points[a], points[b]) for a, b in lids])
        return float(gap / _dist(points[corners[0]], points[corners[1]]))

    if eyes is not None:  # the iris model's contour: 0 and 8 corners, 1-7 lower lid, 9-15 upper lid
        contours = [m.frontalise(e, fit) for e in eyes]
        eye_aspect = np.mean([opening(((12, 4), (11, 3), (13, 5)), (0, 8), c) for c in contours])
    else:
        eye_aspect = np.mean([opening(m.RIGHT_EYE_LIDS, m.RIGHT_EYE_CORNERS, pts),
                              opening(m.LEFT_EYE_LIDS, m.LEFT_EYE_CORNERS, pts)])
    left, right = pts[m.MOUTH_CORNERS[0]], pts[m.MOUTH_CORNERS[1]]
    mouth_width = _dist(left, right)
    gap = np.mean([_dist(pts[a], pts[b]) for a, b in m.INNER_LIPS])
    lift = (pts[m.INNER_LIPS[0][0], 1] - (left[1] + right[1]) / 2.0) / mouth_width  # vs the upper lip
    lids = np.mean([pts[a, 1] for a, _ in m.RIGHT_EYE_LIDS + m.LEFT_EYE_LIDS])
    brows = np.mean(pts[list(m.RIGHT_BROW + m.LEFT_BROW), 1])
    return {
        "eye_aspect": float(eye_aspect),
        "mouth_gap": float(gap / mouth_width),
        "mouth_width": float(mouth_width / eye_span),
        "corner_lift": float(lift),
        "brow_height": float((lids - brows) / eye_span),
    }


def scores_from_ratios(r: dict[str, float], ranges: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Scores in [0, 1] from raw ratios and (relaxed, full) ranges."""
    return {
        "eyes_closed": _ramp(r["eye_aspect"], *ranges["eyes_closed"]),
        "mouth_open": _ramp(r["mouth_gap"], *ranges["mouth_open"]),
        "smile": _ramp(r["mouth_width"] + r["corner_lift"], *ranges["smile"]),
        "brows_raised": _ramp(r["brow_height"], *ranges["brows_raised"]),
    }


def mesh_expression_scores(mesh: np.ndarray, eyes: np.ndarray | None = None) -> dict[str, float]:
    """Scores in [0, 1] for eyes_closed, mouth_open, smile and brows_raised from a face mesh."""
    return scores_from_ratios(mesh_expression_ratios(mesh, eyes), MESH_RANGES)


def label_expression(scores: dict[str, float], thresholds: ExpressionThresholds | None = None,
                     yaw: float | None = None, max_yaw: float = MAX_YAW) -> str:
    """One label: the first expression (in threshold field order) at or over its threshold; "unsure" for a
    face turned past ``max_yaw``."""
    if yaw is not None and abs(yaw) > max_yaw:
        return "unsure"
    thresholds = thresholds or ExpressionThresholds()
    for f in fields(thresholds):
        if scores.get(f.name, 0.0) >= getattr(thresholds, f.name):
            return f.name
    return "neutral"


# --- the learned smile (issue 26) ----------------------------------------------------------------------------

DATA = Path(str(files("curate"))) / "data" / "human"  # the shipped weights (package data)
SMILE_MODEL = DATA / "smile_lr.npz"  # geometry + emotion logits (bench/smile_fit.py --save)
SMILE_MODEL_GEOMETRY = DATA / "smile_lr_geometry.npz"  # geometry only: faces scored without their image

SMILE_FEATURES = ("eye_aspect", "mouth_gap", "mouth_width", "corner_lift", "brow_height",
                  "corner_below_nose", "corner_depth", "corner_x", "upper_lip_below_nose", "lower_lip_below_nose",
                  "corner_vs_lip_mid", "cheek_height")


def symmetric_frontal(mesh: np.ndarray) -> np.ndarray:
    """The mesh in the canonical face's frame (centimetres, head pose removed), symmetrised: each vertex
    averaged with its mirror twin reflected, so features taken on it are unchanged by a left-right flip."""
    from curate.core import mesh as m

    pts = m.frontalise(mesh, m.fit_canonical(mesh))
    twin = pts[m.mesh_mirror()] * np.array([-1.0, 1.0, 1.0])
    return (pts + twin) / 2.0


def smile_features(mesh: np.ndarray, eyes: np.ndarray | None = None) -> np.ndarray:
    """The 12 mesh features of the smile model (``SMILE_FEATURES`` order): the five ratios of
    :func:`mesh_expression_ratios`, then mouth-corner geometry in the symmetrised canonical frame (cm)."""
    from curate.core import mesh as m

    r = mesh_expression_ratios(mesh, eyes)
    p = symmetric_frontal(mesh)
    corner = p[m.MOUTH_CORNERS[0]]  # symmetrised: the right corner equals the mirrored left
    nose = p[m.NOSE_TIP]
    lip_mid = (p[13] + p[14]) / 2
    return np.array([
        r["eye_aspect"], r["mouth_gap"], r["mouth_width"], r["corner_lift"], r["brow_height"],
        corner[1] - nose[1],  # corners rise toward the nose in a smile
        corner[2] - nose[2],  # and go back (z into the scene)
        abs(corner[0]),  # half mouth width
        p[0, 1] - nose[1],  # upper lip top
        p[17, 1] - nose[1],  # lower lip bottom
        corner[1] - lip_mid[1],  # corners above the lips' middle
        p[205, 1] - nose[1],  # cheek (under the eye, beside the nose) rises
    ])


@dataclass(frozen=True)
class SmileModel:
    """A logistic regression on raw features (standardisation folded into ``weights``), read from the plain
    ``.npz`` that ``bench/smile_fit.py --save`` writes (no pickles)."""

    feature_names: tuple[str, ...]
    weights: np.ndarray
    bias: float
    emotion_crop: str  # "upright:1.2" when the last 7 features are the emotion network's logits, else ""

    @classmethod
    def load(cls, path: Path | str) -> SmileModel:
        with np.load(path, allow_pickle=False) as d:
            return cls(tuple(str(n) for n in d["feature_names"]), np.asarray(d["weights"], np.float64),
                       float(d["bias"]), str(d["emotion_crop"]))

    @property
    def uses_emotion(self) -> bool:
        return bool(self.emotion_crop)

    def probability(self, features: np.ndarray) -> float:
        """P(smile) of one face's features (mesh features, then the logits when the model uses them)."""
        z = float(np.asarray(features, np.float64) @ self.weights + self.bias)
        return float(1.0 / (1.0 + np.exp(-z)))


@lru_cache(maxsize=4)
def smile_model(path: str = str(SMILE_MODEL)) -> SmileModel:
    """The shipped smile model (cached)."""
    model = SmileModel.load(path)
    if model.feature_names[:len(SMILE_FEATURES)] != SMILE_FEATURES:
        raise ValueError(f"{path}: features {model.feature_names} do not start with {SMILE_FEATURES}")
    return model


def learned_smile(mesh: np.ndarray, eyes: np.ndarray | None = None, logits: np.ndarray | None = None) -> float:
    """P(smile) from the mesh (+ iris eyes) and the emotion network's mirror-averaged logits; without logits
    the geometry-only model."""
    geo = smile_features(mesh, eyes)
    if logits is None:
        return smile_model(str(SMILE_MODEL_GEOMETRY)).probability(geo)
    return smile_model().probability(np.r_[geo, np.asarray(logits, np.float64).ravel()])


def mesh_expression(mesh: np.ndarray, eyes: np.ndarray | None = None, logits: np.ndarray | None = None
                    ) -> dict[str, float]:
    """The stored scores of a face with a mesh: the mesh ramps of :func:`mesh_expression_scores` with ``smile``
    from the learned model (with the emotion network's ``logits`` when given: :mod:`curate.analysis.expression`)."""
    scores = mesh_expression_scores(mesh, eyes)
    scores["smile"] = learned_smile(mesh, eyes, logits)
    return scores
