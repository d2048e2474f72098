"""Light temporal smoothing of landmarks so aligned crops (and so the pasted face) do not jitter.

An adaptive exponential filter per face track, in the spirit of the One-Euro filter: small movements (landmark
noise) are averaged with the previous frame, large ones (real head motion) pass through without lag.
Pure functions; state is the previous frame's smoothed landmarks.
"""
from __future__ import annotations

import numpy as np

from curate.analysis.frame import face_size


def face_scale(landmarks: np.ndarray) -> float:
    """Size of a face for relative thresholds (curate's face_size), never 0."""
    return face_size(landmarks) or 1.0


def smooth_step(previous: np.ndarray, current: np.ndarray, strength: float, motion: float = 0.04) -> np.ndarray:
    """Blend one face's landmarks with its previous ones: weight on the new frame grows with its motion."""
    if strength <= 0:
        return current
    shift = float(np.linalg.norm(current.mean(0) - previous.mean(0))) / face_scale(current)
    jitter = float(np.abs(current - previous).mean()) / face_scale(current)
    fresh = 1.0 - strength * (1.0 - min(1.0, max(shift, jitter) / motion))
    return fresh * current + (1.0 - fresh) * previous


def match_tracks(previous: list[np.ndarray], current: list[np.ndarray], max_shift: float = 0.5) -> list[int | None]:
    """For each current face, the index of the previous face it continues (centres within max_shift face sizes)."""
    out: list[int | None] = []
    taken: set[int] = set()
    for pts in current:
        centre, scale = pts.mean(0), face_scale(pts)
        best, best_d = None, max_shift
        for j, prev in enumerate(previous):
            d = float(np.linalg.norm(prev.mean(0) - centre)) / scale
            if j not in taken and d < best_d:
                best, best_d = j, d
        if best is not None:
            taken.add(best)
        out.append(best)
    return out


class LandmarkSmoother:
    """Smooths each face's landmarks against the same face in the previous frame (by position)."""

    def __init__(self, strength: float = 0.5):
        self.strength = strength
        self.previous: list[np.ndarray] = []

    def __call__(self, faces: list[np.ndarray]) -> list[np.ndarray]:
        """Smoothed landmarks of this frame's faces (same order)."""
        faces = [np.asarray(f, dtype=np.float64) for f in faces]
        links = match_tracks(self.previous, faces)
        out = [f if j is None else smooth_step(self.previous[j], f, self.strength) for f, j in zip(faces, links)]
        self.previous = out
        return out

    def reset(self) -> None:
        """Forget the previous frame (cuts, seeks)."""
        self.previous = []
