"""Facial expression from 68-landmark geometry: continuous scores and one label per face.

Every measure is a ratio of landmark distances on the *aligned* landmarks (rotation and scale
removed), so it does not depend on face size or roll. Each raw ratio is mapped linearly to a
score in [0, 1] between a "relaxed" and a "full" value, measured on the mean face and on real
dlib landmarks:

==============  =================================================================  ========  =====
score           raw ratio                                                          relaxed   full
==============  =================================================================  ========  =====
eyes_closed     eye aspect ratio (mean of both eyes: lid gap / eye width)          0.22      0.10
mouth_open      inner-lip gap / mouth width                                        0.10      0.50
smile           mouth width / outer-eye-corner distance + corner lift              0.70      0.90
brows_raised    brow-to-upper-lid height / outer-eye-corner distance               0.21      0.28
==============  =================================================================  ========  =====

The label is the first of ``eyes_closed``, ``mouth_open``, ``smile``, ``brows_raised`` whose
score reaches its threshold (:class:`ExpressionThresholds`, all 0.5 by default), else ``neutral``.
Thresholds are adjustable: pass your own to :func:`label_expression` or ``--expression-threshold``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from curate.analysis.align import alignment_matrix, transform_points

LABELS = ("neutral", "eyes_closed", "mouth_open", "smile", "brows_raised")
SCORE_NAMES = ("eyes_closed", "mouth_open", "smile", "brows_raised")

_RANGES = {
    "eyes_closed": (0.22, 0.10),
    "mouth_open": (0.10, 0.50),
    "smile": (0.70, 0.90),
    "brows_raised": (0.21, 0.28),
}


@dataclass(frozen=True)
class ExpressionThresholds:
    """Score a face must reach for each label; checked in field order."""

    eyes_closed: float = 0.5
    mouth_open: float = 0.5
    smile: float = 0.5
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
    centre_y = (pts[51, 1] + pts[57, 1]) / 2.0
    lift = (centre_y - (pts[48, 1] + pts[54, 1]) / 2.0) / mouth_width
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
    r = expression_ratios(landmarks)
    return {
        "eyes_closed": _ramp(r["eye_aspect"], *_RANGES["eyes_closed"]),
        "mouth_open": _ramp(r["mouth_gap"], *_RANGES["mouth_open"]),
        "smile": _ramp(r["mouth_width"] + r["corner_lift"], *_RANGES["smile"]),
        "brows_raised": _ramp(r["brow_height"], *_RANGES["brows_raised"]),
    }


def label_expression(scores: dict[str, float], thresholds: ExpressionThresholds | None = None) -> str:
    """One label: the first expression (in threshold field order) at or over its threshold."""
    thresholds = thresholds or ExpressionThresholds()
    for f in fields(thresholds):
        if scores.get(f.name, 0.0) >= getattr(thresholds, f.name):
            return f.name
    return "neutral"
