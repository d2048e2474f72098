"""Finding the faces to swap in a stream of frames: detect on key frames, follow with the landmarker between
them, keep only the faces that match a reference identity (``--only``), smooth the landmarks over time.

The detector is the slow stage (dlib HOG: tens of ms per 640x360 frame); the 68-point landmarker is a few ms.
So by default the detector runs every ``detect_every`` frames and whenever a followed face is lost; each face
in between is re-landmarked inside the box its previous landmarks imply. ``detect_every=1`` detects every frame.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert.smoothing import LandmarkSmoother, face_scale
from curate.analysis.protocols import Detection, StagedAnalyzer, l2_normalise, largest_face
from curate.core.landmarks import eye_centres


class ReferenceError(ValueError):
    """No usable face in the --only reference images."""


@dataclass
class TargetFace:
    """A face in a frame: 68 landmarks (frame px, smoothed) and whether it is one to swap."""

    landmarks: np.ndarray
    swap: bool = True


@dataclass
class _Track:
    landmarks: np.ndarray
    box_offset: np.ndarray  # detector box (x, y, w, h) relative to the landmark box, in face sizes
    swap: bool


def _landmark_box(pts: np.ndarray) -> np.ndarray:
    lo, hi = pts.min(0), pts.max(0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])


def _eye_keypoints(pts: np.ndarray) -> tuple[tuple[float, float], ...]:
    """The subject's right and left eye centres of 68 landmarks: the keypoints that turn a landmarker's crop."""
    return tuple(tuple(float(v) for v in eye) for eye in eye_centres(pts))


def reference_embedding(analyzer: StagedAnalyzer, images: list[Path],
                        on_error: Callable[[Path | str, str], None] | None = None) -> np.ndarray:
    """Unit mean identity embedding of the largest face in each reference image."""
    from curate.ops.identity import reference_faces

    vectors = [l2_normalise(largest_face(faces).embedding) for _, faces in reference_faces(analyzer, images, on_error)]
    if not vectors:
        raise ReferenceError(f"no face found in the --only reference(s): {', '.join(map(str, images))}")
    return l2_normalise(np.mean(vectors, axis=0))


class FaceFinder:
    """Per-frame faces with key-frame detection, landmark following, identity filter and smoothing."""

    def __init__(self, analyzer: StagedAnalyzer, detect_every: int = 5, reference: np.ndarray | None = None,
                 threshold: float = 0.35, smooth: float = 0.5):
        self.analyzer, self.detect_every = analyzer, max(1, detect_every)
        self.reference, self.threshold = reference, threshold
        self.smoother = LandmarkSmoother(smooth)
        self.tracks: list[_Track] = []
        self.since_detect = 0
        self.detections = 0

    def _is_target(self, rgb: np.ndarray, pts: np.ndarray) -> bool:
        if self.reference is None:
            return True
        emb = l2_normalise(self.analyzer.embedder.embed(rgb, pts))
        return float(np.linalg.norm(emb - self.reference)) <= self.threshold

    def _detect(self, rgb: np.ndarray) -> None:
        self.detections += 1
        self.since_detect = 0
        self.tracks = []
        for det in sorted(self.analyzer.detector.detect(rgb), key=lambda d: (d.bbox[0], d.bbox[1])):
            found = self.analyzer.locate(rgb, det)
            pts = np.asarray(found.landmarks, dtype=np.float64)
            box = _landmark_box(pts)
            offset = (np.asarray(det.bbox, dtype=np.float64) - box) / face_scale(pts)
            # a face whose landmarks were only guessed (no mesh) is followed but left as it is
            self.tracks.append(_Track(pts, offset, found.ok and self._is_target(rgb, pts)))

    def _follow(self, rgb: np.ndarray) -> bool:
        """Re-landmark every followed face in its predicted box; False when one is lost (then detect)."""
        h, w = rgb.shape[:2]
        for track in self.tracks:
            scale = face_scale(track.landmarks)
            box = _landmark_box(track.landmarks) + track.box_offset * scale
            x, y, bw, bh = box
            if x + bw < 0 or y + bh < 0 or x > w or y > h:
                return False
            found = self.analyzer.locate(rgb, Detection(tuple(box), 1.0, _eye_keypoints(track.landmarks)))
            if not found.ok and track.swap:
                return False
            pts = np.asarray(found.landmarks, dtype=np.float64)
            ratio = face_scale(pts) / scale
            shift = float(np.linalg.norm(pts.mean(0) - track.landmarks.mean(0))) / scale
            if not 0.75 < ratio < 1.33 or shift > 0.3:
                return False
            track.landmarks = pts
        return True

    def __call__(self, rgb: np.ndarray) -> list[TargetFace]:
        """This frame's faces, left to right on detection frames."""
        self.since_detect += 1
        if not self.tracks or self.since_detect >= self.detect_every or not self._follow(rgb):
            self._detect(rgb)
        smoothed = self.smoother([t.landmarks for t in self.tracks])
        return [TargetFace(pts, t.swap) for pts, t in zip(smoothed, self.tracks)]

    def reset(self) -> None:
        """Forget followed faces and smoothing state (a new source, or a gap in the frames)."""
        self.tracks, self.since_detect = [], 0
        self.smoother.reset()
