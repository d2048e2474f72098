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
(:class:`ExpressionThresholds`, 0.5 each), else ``neutral``. Smile comes first because a laugh opens the
mouth and a broad smile narrows the eyes: both stay smiles. Talking and singing open the mouth without the
smile's width and lift, so they are ``mouth_open``. Thresholds are adjustable: pass your own to
:func:`label_expression` or ``--expression-threshold smile=0.6``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from curate.analysis.align import alignment_matrix, transform_points

LABELS = ("neutral", "smile", "mouth_open", "eyes_closed", "brows_raised")
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
    eyes_closed: float = 0.5
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
    from curate.analysis import mesh as m

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


def label_expression(scores: dict[str, float], thresholds: ExpressionThresholds | None = None) -> str:
    """One label: the first expression (in threshold field order) at or over its threshold."""
    thresholds = thresholds or ExpressionThresholds()
    for f in fields(thresholds):
        if scores.get(f.name, 0.0) >= getattr(thresholds, f.name):
            return f.name
    return "neutral"
