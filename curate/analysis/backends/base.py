"""The face-analysis protocol: detect -> 68 landmarks -> identity embedding, one stage each."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class ModelsMissingError(RuntimeError):
    """A backend's model files are not on disk; the message says how to get them."""


@dataclass(frozen=True)
class Detection:
    """A detector hit: box (x, y, w, h) in source pixels, the detector's confidence and its keypoints.

    ``keypoints`` are the detector's own points in source pixels where it has them (BlazeFace: right eye,
    left eye, nose tip, mouth centre, right tragion, left tragion — the subject's right is the image's left).
    """

    bbox: tuple[float, float, float, float]
    score: float
    keypoints: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class LandmarkResult:
    """What a landmarker found for one face: 68 points (source px) and, where the model gives them, more.

    ``ok`` is False when the landmark model could not place the face and ``landmarks`` were derived from
    the detector's keypoints instead; ``mesh`` is a dense 3D mesh (Nx3, source px, z into the scene),
    ``eyes`` the eye-contour points of an iris model (2 x M x 3: subject's right eye, then left).
    """

    landmarks: np.ndarray
    ok: bool = True
    mesh: np.ndarray | None = None
    eyes: np.ndarray | None = None


@dataclass(frozen=True)
class AnalyzedFace:
    """One face after all stages: detection, 68 landmarks (source px), embedding, and the extras above."""

    bbox: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    embedding: np.ndarray
    landmarks_ok: bool = True
    mesh: np.ndarray | None = None
    eyes: np.ndarray | None = None
    keypoints: np.ndarray | None = None


@runtime_checkable
class Detector(Protocol):
    """Finds face boxes in an RGB uint8 image."""

    def detect(self, rgb: np.ndarray) -> list[Detection]: ...


@runtime_checkable
class Landmarker(Protocol):
    """Places the 68 iBUG landmarks (68x2, source pixels) of one detected face."""

    def landmarks(self, rgb: np.ndarray, detection: Detection) -> np.ndarray: ...


@runtime_checkable
class Embedder(Protocol):
    """Turns a face (given by its 68 landmarks) into an L2-normalised identity vector."""

    embedding_size: int

    def embed(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class FaceAnalyzer(Protocol):
    """A whole backend: every face in an image with landmarks and embedding."""

    name: str
    embedding_size: int

    def analyze(self, rgb: np.ndarray) -> list[AnalyzedFace]: ...


def largest_face(faces: list[AnalyzedFace]) -> AnalyzedFace:
    """The face with the largest detector box."""
    return max(faces, key=lambda f: f.bbox[2] * f.bbox[3])


def l2_normalise(vector: np.ndarray) -> np.ndarray:
    """Unit-length float32 copy of a vector."""
    vec = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


@dataclass
class StagedAnalyzer:
    """A backend made of three interchangeable stages."""

    name: str
    detector: Detector
    landmarker: Landmarker
    embedder: Embedder

    @property
    def embedding_size(self) -> int:
        """Length of the identity vectors."""
        return self.embedder.embedding_size

    def locate(self, rgb: np.ndarray, detection: Detection) -> LandmarkResult:
        """The landmarker's full result for one detection (68 points only, for landmarkers without more)."""
        locate = getattr(self.landmarker, "locate", None)
        if locate is not None:
            return locate(rgb, detection)
        return LandmarkResult(np.asarray(self.landmarker.landmarks(rgb, detection), dtype=np.float64))

    def analyze(self, rgb: np.ndarray) -> list[AnalyzedFace]:
        """Run detect -> landmarks -> embedding on one RGB image, faces sorted left to right."""
        return self.analyze_many([rgb])[0]

    def analyze_many(self, images: list[np.ndarray]) -> list[list[AnalyzedFace]]:
        """``analyze`` for several images, each stage batched over all of them where the stage can
        (``detect_many``, ``locate_many``, ``embed_frames``: on a GPU one call instead of one per frame/face)."""
        detect_many = getattr(self.detector, "detect_many", None)
        found = detect_many(images) if detect_many is not None else [self.detector.detect(rgb) for rgb in images]
        found = [sorted(dets, key=lambda d: (d.bbox[0], d.bbox[1])) for dets in found]
        locate_many = getattr(self.landmarker, "locate_many", None)
        if locate_many is not None:  # every face of every image at once: one network batch per step
            results = iter(locate_many([(rgb, det) for rgb, dets in zip(images, found) for det in dets]))
            located = [(dets, [next(results) for _ in dets]) for dets in found]
        else:
            located = [(dets, [self.locate(rgb, det) for det in dets]) for rgb, dets in zip(images, found)]
        marks = [(rgb, [f.landmarks for f in found]) for rgb, (_, found) in zip(images, located)]
        embed_frames = getattr(self.embedder, "embed_frames", None)
        embed_many = getattr(self.embedder, "embed_many", None)
        if embed_frames is not None:
            vectors = embed_frames(marks)
        elif embed_many is not None:
            vectors = [embed_many(rgb, pts) for rgb, pts in marks]
        else:
            vectors = [[self.embedder.embed(rgb, p) for p in pts] for rgb, pts in marks]
        return [
            [
                AnalyzedFace(
                    det.bbox, det.score, f.landmarks, vec, landmarks_ok=f.ok, mesh=f.mesh, eyes=f.eyes,
                    keypoints=np.asarray(det.keypoints, dtype=np.float64) if det.keypoints else None,
                )
                for det, f, vec in zip(dets, found, vecs)
            ]
            for (dets, found), vecs in zip(located, vectors)
        ]
