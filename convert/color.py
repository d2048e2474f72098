"""Colour transfer of the swapped face onto the original face's colours, inside the face mask.

All functions take the model output and the original aligned crop as float32 RGB in [0, 1] (S, S, 3) and a
(S, S) mask; statistics come from mask > 0.5 only, so background and hair do not leak in. Pure numpy/OpenCV.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

MIN_PIXELS = 16


def _pixels(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    sel = mask > 0.5
    return image[sel] if sel.sum() >= MIN_PIXELS else image.reshape(-1, image.shape[-1])


def no_transfer(face: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The model's colours as they are."""
    return face


def rct(face: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer: match mean and standard deviation per channel in Lab."""
    src = cv2.cvtColor(np.ascontiguousarray(face, dtype=np.float32), cv2.COLOR_RGB2Lab)
    ref = cv2.cvtColor(np.ascontiguousarray(original, dtype=np.float32), cv2.COLOR_RGB2Lab)
    ps, pr = _pixels(src, mask), _pixels(ref, mask)
    mu_s, sd_s = ps.mean(0), ps.std(0)
    mu_r, sd_r = pr.mean(0), pr.std(0)
    out = (src - mu_s) * (sd_r / np.maximum(sd_s, 1e-3)) + mu_r
    out[..., 0] = np.clip(out[..., 0], 0, 100)
    return np.clip(cv2.cvtColor(out.astype(np.float32), cv2.COLOR_Lab2RGB), 0, 1)


def _sqrtm(cov: np.ndarray, inverse: bool = False) -> np.ndarray:
    vals, vecs = np.linalg.eigh(cov)
    vals = np.maximum(vals, 1e-6)
    return (vecs * (vals ** (-0.5 if inverse else 0.5))) @ vecs.T


def lct(face: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Linear colour transfer: match the RGB mean and full covariance (Cr^1/2 Cs^-1/2)."""
    ps, pr = _pixels(face, mask).astype(np.float64), _pixels(original, mask).astype(np.float64)
    mu_s, mu_r = ps.mean(0), pr.mean(0)
    cs = np.cov(ps, rowvar=False) + np.eye(3) * 1e-5
    cr = np.cov(pr, rowvar=False) + np.eye(3) * 1e-5
    transform = _sqrtm(cr) @ _sqrtm(cs, inverse=True)
    out = (face.reshape(-1, 3) - mu_s) @ transform.T + mu_r
    return np.clip(out.reshape(face.shape), 0, 1).astype(np.float32)


def hist_match(face: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Histogram matching per RGB channel (cumulative distributions inside the mask)."""
    out = np.empty_like(face, dtype=np.float32)
    ps, pr = _pixels(face, mask), _pixels(original, mask)
    quantiles = np.linspace(0, 1, 256)
    for c in range(3):
        src_q = np.quantile(ps[:, c], quantiles)
        ref_q = np.quantile(pr[:, c], quantiles)
        src_q, keep = np.unique(src_q, return_index=True)
        out[..., c] = np.interp(face[..., c], src_q, ref_q[keep])
    return out


COLOR_TRANSFERS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "none": no_transfer, "rct": rct, "lct": lct, "hist": hist_match,
}


def color_transfer(name: str, face: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Apply the colour transfer chosen by name: none, rct, lct or hist."""
    if name not in COLOR_TRANSFERS:
        raise ValueError(f"unknown colour transfer {name!r} (use {', '.join(COLOR_TRANSFERS)})")
    return COLOR_TRANSFERS[name](face, original, mask)
