"""Masked reconstruction losses: MAE + MSE + DSSIM inside the face mask, extra weight on eyes and mouth,
and a mask loss for the decoders' mask output."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _gaussian(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


_WINDOW = _gaussian()


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM (Gaussian window 11, sigma 1.5) of images in [0, 1], averaged over channels."""
    c = x.shape[1]
    w = _WINDOW.to(x).expand(c, 1, -1, -1)
    pad = w.shape[-1] // 2
    mu_x, mu_y = F.conv2d(x, w, padding=pad, groups=c), F.conv2d(y, w, padding=pad, groups=c)
    sxx = F.conv2d(x * x, w, padding=pad, groups=c) - mu_x**2
    syy = F.conv2d(y * y, w, padding=pad, groups=c) - mu_y**2
    sxy = F.conv2d(x * y, w, padding=pad, groups=c) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean(1, keepdim=True)


def masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean of per-pixel values (weights broadcast over channels)."""
    w = weights.expand_as(values)
    return (values * w).sum() / w.sum().clamp_min(1e-6)


def face_loss(pred: torch.Tensor, pred_mask: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
              weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """Loss terms of one identity; 'total' = MAE + MSE + DSSIM (masked, weighted) + mask MSE."""
    w = mask * weight
    terms = {
        "mae": masked_mean((pred - target).abs(), w),
        "mse": masked_mean((pred - target) ** 2, w),
        "dssim": masked_mean((1 - ssim_map(pred, target)) / 2, w),
        "mask": F.mse_loss(pred_mask, mask),
    }
    terms["total"] = terms["mae"] + terms["mse"] + terms["dssim"] + terms["mask"]
    return terms
