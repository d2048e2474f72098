"""mediapipe backend (the default): MediaPipe's face models, dlib's 128-d identity embedding.

Runners (:mod:`curate.analysis.runtime.runners`): OpenCV DNN on the CPU, or torch on a GPU when there is one —
there the regions of many frames and the faces of many frames go through each model in one batch
(``detect_many``, ``locate_many``).

- detect: BlazeFace full-range (``blazeface.py``), with tiles for small faces in large images.
- landmarks: FaceMesh 468 points + the iris model's eye contours, 68 iBUG points from the mesh (``facemesh.py``).
- embedding: dlib's ResNet fed with the mesh's 68 points (as the dlib backend does with its own).

The ``.tflite`` files (Apache-2.0, from MediaPipe) ship in ``curate/data/mediapipe``; nothing is downloaded.
The mediapipe, tensorflow and tflite-runtime packages are not needed.
"""
from __future__ import annotations

from typing import Any

from curate.analysis.backends.mediapipe.blazeface import BlazeFaceDetector
from curate.analysis.backends.mediapipe.facemesh import FaceMeshLandmarker
from curate.analysis.protocols import StagedAnalyzer
from curate.analysis.runtime.runners import MODELS, model_path


def check(**_: Any) -> None:
    """Fail early with ModelsMissingError when a model file or dlib's embedding weights are missing."""
    from curate.analysis.backends import dlib as dlib_backend

    for key in MODELS:
        model_path(key)
    dlib_backend.check()


def create(min_score: float = 0.5, min_tile: int = 384, iris: bool = True, engine: str = "auto",
           **_: Any) -> StagedAnalyzer:
    """The mediapipe backend: BlazeFace full-range + FaceMesh/iris + dlib's 128-d embedding; ``engine`` runs the
    face models (``auto``: torch on a GPU when there is one, else OpenCV DNN; ``opencv``; ``torch``)."""
    from curate.analysis.backends.dlib import DlibEmbedder

    check()
    return StagedAnalyzer(
        "mediapipe", BlazeFaceDetector(min_score, min_tile, engine), FaceMeshLandmarker(iris=iris, engine=engine),
        DlibEmbedder()
    )
