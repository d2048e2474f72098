"""Face-analysis backends, chosen by name (as faceswap's extract plugins are), with each backend's options:
the names and defaults of its ``create`` arguments, and the values the choice options allow."""
from __future__ import annotations

from importlib import import_module
from types import ModuleType, SimpleNamespace
from typing import Any

from curate.analysis.backends.dlib import DETECTORS
from curate.analysis.protocols import FaceAnalyzer
from curate.analysis.runtime.runners import ENGINES
from curate.core.defaults import keyword_defaults

DEFAULT_BACKEND = "mediapipe"
BACKENDS = {
    "mediapipe": "curate.analysis.backends.mediapipe",
    "dlib": "curate.analysis.backends.dlib",
    "insightface": "curate.analysis.backends.insightface",
}
CHOICES: dict[str, tuple[str, ...]] = {"engine": ENGINES, "detector": DETECTORS}  # options with a fixed set of values


def backend_module(name: str) -> ModuleType:
    """The named backend's module, or ValueError naming the backends there are."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    return import_module(BACKENDS[name])


def create_analyzer(name: str = DEFAULT_BACKEND, **options: Any) -> FaceAnalyzer:
    """Build the named backend ('mediapipe', 'dlib' or 'insightface') with its options."""
    return backend_module(name).create(**options)


def check_backend(name: str = DEFAULT_BACKEND, **options: Any) -> None:
    """Raise ModelsMissingError/ValueError now if the named backend cannot load (cheap: no models read)."""
    backend_module(name).check(**options)


def backend_options(name: str) -> SimpleNamespace:
    """The named backend's options with their defaults (the keyword arguments of its ``create``)."""
    return keyword_defaults(backend_module(name).create)


def options_for(name: str, **given: Any) -> dict[str, Any]:
    """Of options given for any backend (the CLI's), those the named backend takes."""
    own = vars(backend_options(name))
    return {key: value for key, value in given.items() if key in own}
