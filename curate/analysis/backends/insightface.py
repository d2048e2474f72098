"""insightface backend: a FaceAnalysis model pack (SCRFD detector, 3D-68 landmarks, ArcFace) read from disk.

insightface ships no weights. Its packs (e.g. ``buffalo_l``; non-commercial licence) must already be
on disk: ``<models-dir>/models/<pack>/*.onnx`` (the insightface home layout), ``<models-dir>/<pack>``
or a folder of ``.onnx`` files given directly. Nothing is downloaded.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from curate.analysis.protocols import AnalyzedFace, ModelsMissingError, l2_normalise

DEFAULT_PACK = "buffalo_l"
REQUIRED_TASKS = ("detection", "landmark_3d_68", "recognition")


def default_models_dir() -> Path:
    """The insightface home: $INSIGHTFACE_HOME or ~/.insightface."""
    return Path(os.environ.get("INSIGHTFACE_HOME", "~/.insightface")).expanduser()


def find_pack(models_dir: str | Path | None = None, pack: str = DEFAULT_PACK) -> Path:
    """Folder holding the pack's .onnx files, or ModelsMissingError saying how to get them."""
    root = Path(models_dir).expanduser() if models_dir else default_models_dir()
    for candidate in (root / "models" / pack, root / pack, root):
        if candidate.is_dir() and any(candidate.glob("*.onnx")):
            return candidate
    raise ModelsMissingError(
        f"insightface model pack '{pack}' not found under {root} (looked in {root / 'models' / pack}, "
        f"{root / pack} and {root}). insightface ships no weights and faceset downloads none: get the "
        f"'{pack}' pack (non-commercial licence) from the insightface project, unzip its .onnx files into "
        f"{root / 'models' / pack}, or pass --models-dir DIR; or use an offline backend: --backend mediapipe (default) or dlib."
    )


class InsightFaceAnalyzer:
    """FaceAnalysis from a local pack, reporting dlib-compatible 68-point landmarks."""

    name = "insightface"

    def __init__(self, models_dir: str | Path | None = None, pack: str = DEFAULT_PACK, det_size: int = 640):
        folder = find_pack(models_dir, pack)
        try:
            from insightface.app import FaceAnalysis
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelsMissingError(f"the insightface backend needs 'insightface' and 'onnxruntime' ({exc})")
        self._app = FaceAnalysis(name=str(folder), allowed_modules=list(REQUIRED_TASKS), providers=["CPUExecutionProvider"])
        missing = [t for t in REQUIRED_TASKS if t not in self._app.models]
        if missing:
            raise ModelsMissingError(f"insightface pack in {folder} lacks the {', '.join(missing)} model(s)")
        self._app.prepare(ctx_id=-1, det_size=(det_size, det_size))
        self.embedding_size = int(self._app.models["recognition"].output_shape[1])

    def analyze(self, rgb: np.ndarray) -> list[AnalyzedFace]:
        """Every face, sorted left to right, with 68 landmarks in source pixels and ArcFace embedding."""
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        out = []
        for face in self._app.get(bgr):
            x0, y0, x1, y1 = (float(v) for v in face.bbox)
            pts = np.asarray(face.landmark_3d_68, dtype=np.float64)[:, :2]
            out.append(AnalyzedFace((x0, y0, x1 - x0, y1 - y0), float(face.det_score), pts, l2_normalise(face.embedding)))
        return sorted(out, key=lambda f: (f.bbox[0], f.bbox[1]))


def check(models_dir: str | Path | None = None, pack: str = DEFAULT_PACK, **_: Any) -> None:
    """Fail early with ModelsMissingError when the model pack is not on disk."""
    find_pack(models_dir, pack)


def create(models_dir: str | Path | None = None, pack: str = DEFAULT_PACK, **_: Any) -> InsightFaceAnalyzer:
    """The insightface backend from models on disk."""
    return InsightFaceAnalyzer(models_dir, pack)
