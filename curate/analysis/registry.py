"""Face-analysis backends, chosen by name (as faceswap's extract plugins are)."""
from __future__ import annotations

from importlib import import_module
from typing import Any

from curate.analysis.protocols import FaceAnalyzer

BACKENDS = {
    "mediapipe": "curate.analysis.backends.mediapipe",
    "dlib": "curate.analysis.backends.dlib",
    "insightface": "curate.analysis.backends.insightface",
}


def create_analyzer(name: str = "mediapipe", **options: Any) -> FaceAnalyzer:
    """Build the named backend ('mediapipe', 'dlib' or 'insightface') with its options."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    return import_module(BACKENDS[name]).create(**options)


def check_backend(name: str = "mediapipe", **options: Any) -> None:
    """Raise ModelsMissingError/ValueError now if the named backend cannot load (cheap: no models read)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    import_module(BACKENDS[name]).check(**options)
