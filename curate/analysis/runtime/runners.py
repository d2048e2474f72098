"""The shipped MediaPipe models (``curate/data/mediapipe``: face detector, mesh, iris, palm and hand) and their
runners: OpenCV DNN on the CPU, or torch (:mod:`curate.analysis.runtime.tflite_torch`: the same graph and
weights) on a GPU when there is one, where any batch goes through in one call."""
from __future__ import annotations

from importlib.resources import as_file, files

import cv2
import numpy as np

from curate.analysis.protocols import ModelsMissingError

MODELS = {"detector": "face_detection_full_range.tflite", "mesh": "face_landmark.tflite", "iris": "iris_landmark.tflite",
          "palm": "palm_detection_full.tflite", "hand": "hand_landmark_full.tflite"}


def model_path(key: str) -> str:
    ref = files("curate") / "data" / "mediapipe" / MODELS[key]
    with as_file(ref) as path:
        if not path.is_file():
            raise ModelsMissingError(
                f"MediaPipe model {MODELS[key]} is missing from {path.parent} (it ships with faceset: reinstall it)"
            )
        return str(path)


ENGINES = ("auto", "opencv", "torch")


def _torch_device() -> str | None:
    """'cuda' when torch sees a GPU, else None (the models then run on OpenCV DNN)."""
    from curate.core.device import on_gpu

    return "cuda" if on_gpu() else None


class OpenCVRunner:
    """A model run by OpenCV DNN on the CPU (outputs by name, batch first)."""

    def __init__(self, path: str):
        self.net = cv2.dnn.readNetFromTFLite(path)
        self.names = tuple(self.net.getUnconnectedOutLayersNames())
        self.device = "cpu (OpenCV DNN)"

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """NHWC float batch -> {output name: array with the batch first}."""
        self.net.setInput(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
        out = {}
        for name, value in zip(self.names, self.net.forward(self.names)):
            value = np.asarray(value)  # OpenCV folds the batch into a reshaped output (batch-major): unfold it
            out[name] = value if value.shape[0] == len(batch) else value.reshape(len(batch), -1, *value.shape[2:])
        return out


class TorchRunner:
    """A model run by torch (:mod:`curate.analysis.runtime.tflite_torch`) on ``device``: any batch in one call."""

    def __init__(self, path: str, device: str):
        from curate.analysis.runtime.tflite_torch import TFLiteModule

        self.module = TFLiteModule(path).to(device).eval()
        self.names = tuple(self.module.output_names)
        self.device = device

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """NHWC float batch -> {output name: array with the batch first}."""
        return dict(zip(self.names, self.module.run(batch)))


def model_net(key: str, engine: str = "auto") -> OpenCVRunner | TorchRunner:
    """One of the shipped MediaPipe models with a runner: ``opencv`` (CPU), ``torch`` (its GPU when there is
    one, else CPU) or ``auto`` — torch on a GPU, else OpenCV, except the hand landmarker, which OpenCV's DNN
    computes wrongly (its points several px off TFLite's own interpreter) and torch gets right on the CPU too."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    device = _torch_device()
    if engine == "torch" or (engine == "auto" and (device is not None or key == "hand")):
        return TorchRunner(model_path(key), device or "cpu")
    return OpenCVRunner(model_path(key))


def run_chunks(runner: OpenCVRunner | TorchRunner, batch: np.ndarray, chunk: int = 64) -> dict[str, np.ndarray]:
    """A runner over a batch of any length, ``chunk`` images a call."""
    parts = [runner(batch[k:k + chunk]) for k in range(0, len(batch), chunk)]
    return {n: np.concatenate([p[n] for p in parts]) for n in runner.names} if parts else {}
