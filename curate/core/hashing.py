"""Perceptual hash of an aligned face crop (64-bit DCT, pHash): what near-duplicate search compares."""
from __future__ import annotations

import cv2
import numpy as np


def _face_dct(image: np.ndarray) -> np.ndarray:
    """8x8 low-frequency DCT of an aligned crop's central face area (grey, 32x32)."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    centre = grey[h // 8: h - h // 8, w // 8: w - w // 8]
    small = cv2.resize(centre, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    return cv2.dct(small)[:8, :8]


def perceptual_hash(image: np.ndarray) -> int:
    """64-bit DCT hash of an aligned crop's central face area (pHash: low frequencies above their median)."""
    low = _face_dct(image).ravel()
    bits = low > np.median(low[1:])
    return int(np.packbits(bits).view(">u8")[0])


def hash_to_hex(value: int) -> str:
    """Stored form of a perceptual hash."""
    return f"{value:016x}"


def hashes_from_hex(values: list[str]) -> np.ndarray:
    """uint64 array of stored hashes."""
    return np.array([int(v, 16) for v in values], dtype=np.uint64)


def crop_descriptor(image: np.ndarray) -> np.ndarray:
    """Unit-length low-frequency DCT coefficients of a crop's face area (pose-sensitive, unlike identity)."""
    low = _face_dct(image).ravel()[1:]
    return low / max(float(np.linalg.norm(low)), 1e-9)
