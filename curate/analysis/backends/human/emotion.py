"""The Human library's emotion network (``emotion.json``: mini-Xception trained on FER2013), run by torch.

It ships in ``curate/data/human`` (MIT, NOTICE there) and feeds the learned ``smile`` score
(``curate.core.expression.SmileModel``). As in Human's ``src/gear/emotion.ts``: a 64 px crop, grey by the
weights (0.2989, 0.5870, 0.1140) of 0..1 RGB, fed as ``(grey - 0.5) * 2``; class order angry, disgust, fear,
happy, sad, surprise, neutral. faceset cuts the crop from the 68 landmarks with ``embedders.crop_matrix``
(``"upright"`` at 1.2x BlazeFace's box: eye line level, so head roll does not matter) instead of Human's
unrotated box x1.4, and reads the logits (``global_average_pooling2d_1/Mean``, before the softmax), averaged
over the crop and its mirror so a mirrored face gets the same values (bench/smile_fit.py measured both).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from curate.analysis.backends.human.embedders import DATA, crop_matrix, graph_module, warp

MODEL = DATA / "emotion.json"
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
GREY = np.array([0.2989, 0.5870, 0.1140])  # Human's rgb -> grey weights (emotion.ts)
LOGITS = "StatefulPartitionedCall/model_1/global_average_pooling2d_1/Mean"  # the softmax's input
SIZE = 64
CROP = ("upright", 1.2)  # crop kind of embedders.crop_matrix, box scale


def parse_crop(text: str) -> tuple[str, float]:
    """``"upright:1.2"`` (as the smile model's npz stores it) -> ("upright", 1.2)."""
    kind, _, scale = str(text).partition(":")
    return kind, float(scale or 1.0)


def grey_crop(rgb: np.ndarray, landmarks: np.ndarray, crop: tuple[str, float] = CROP) -> np.ndarray:
    """The network's view of one face: 64 x 64 grey in 0..1 (float32), cut from its 68 landmarks."""
    pixels = warp(rgb, crop_matrix(landmarks, SIZE, crop[0], crop[1]), SIZE).astype(np.float64) / 255.0
    return (pixels @ GREY).astype(np.float32)


def emotion_net(device: str = "cpu", path: Path | str = MODEL):  # noqa: ANN201 - a torch module
    """The network (cached per process) with the logits as its one output; input N x 1 x 64 x 64 in -1..1."""
    if not Path(path).exists():
        from curate.analysis.protocols import ModelsMissingError

        raise ModelsMissingError(f"{path} is missing (it ships with faceset in curate/data/human)")
    return graph_module(str(path), LOGITS, device)


def logits_of_crops(crops: list[np.ndarray] | np.ndarray, device: str = "cpu") -> np.ndarray:
    """Pre-softmax outputs (N x 7) of grey crops from ``grey_crop``, each averaged with its mirror."""
    import torch

    crops = np.asarray(crops, dtype=np.float32).reshape(-1, SIZE, SIZE)
    if not len(crops):
        return np.zeros((0, len(CLASSES)))
    both = np.concatenate([crops, crops[:, :, ::-1]])
    x = torch.from_numpy((both[:, None] - 0.5) * 2.0).to(device)  # Human: (grey - 0.5) * 2
    with torch.inference_mode():
        out = emotion_net(device)(x)[0].float().cpu().numpy().astype(np.float64)
    return (out[:len(crops)] + out[len(crops):]) / 2.0


def emotion_logits(rgb: np.ndarray, landmarks: list[np.ndarray], crop: tuple[str, float] = CROP,
                   device: str = "cpu") -> np.ndarray:
    """Mirror-averaged logits (N x 7) of the faces with these 68 landmarks in one image, one batch."""
    return logits_of_crops([grey_crop(rgb, p, crop) for p in landmarks], device)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of logits (last axis)."""
    z = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)
