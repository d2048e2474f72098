"""The face-analysis protocol: detect -> 68 landmarks -> identity embedding, one stage each."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class ModelsMissingError(RuntimeError):
    """A backend's model files are not on disk; the message says how to get them."""


@dataclass(frozen=True)
class Detection:
    """A detector hit: box (x, y, w, h) in source pixels and the detector's confidence."""

    bbox: tuple[float, float, float, float]
    score: float


@dataclass(frozen=True)
class AnalyzedFace:
    """One face after all stages: detection, 68 landmarks (source px) and embedding."""

    bbox: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    embedding: np.ndarray


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

    def analyze(self, rgb: np.ndarray) -> list[AnalyzedFace]:
        """Run detect -> landmarks -> embedding on one RGB image, faces sorted left to right."""
        faces = []
        for det in sorted(self.detector.detect(rgb), key=lambda d: (d.bbox[0], d.bbox[1])):
            pts = self.landmarker.landmarks(rgb, det)
            faces.append(AnalyzedFace(det.bbox, det.score, pts, self.embedder.embed(rgb, pts)))
        return faces
