"""Face masks stored on faces as FiftyOne segmentations: reading them, and which one an export carries.

``mask_fixed`` (painted by a user, `faceset mask fix`) outranks ``mask_learned`` (the face-set's mask network,
`faceset mask apply`); masks imported from faceswap / DeepFaceLab are ``mask_<name>`` fields.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

LEARNED_FIELD = "mask_learned"
FIXED_FIELD = "mask_fixed"
EXPORT_ORDER = (FIXED_FIELD, LEARNED_FIELD)


def segmentation_array(label: Any) -> np.ndarray | None:
    """A FiftyOne Segmentation's mask as uint8 0/255 (from ``mask`` or ``mask_path``), or None."""
    if label is None:
        return None
    mask = getattr(label, "mask", None)
    if mask is None and getattr(label, "mask_path", None):
        mask = cv2.imread(str(label.mask_path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    return np.where(mask > (127 if mask.max() > 1 else 0), 255, 0).astype(np.uint8)


def polygons_mask(label: Any, size: int) -> np.ndarray | None:
    """XSeg include polygons minus exclude polygons (relative points), rendered at ``size``."""
    if label is None or not getattr(label, "polylines", None):
        return None
    mask = np.zeros((size, size), np.uint8)
    for poly in label.polylines:
        for pts in poly.points:
            value = 0 if "exclude" in str(poly.label).lower() else 255
            cv2.fillPoly(mask, [np.round(np.asarray(pts) * size).astype(np.int32)], value)
    return mask


def export_mask_field(dataset: Any, choice: str | None = "auto") -> str | None:
    """The mask field an export writes: 'auto' = mask_fixed, else mask_learned, else none; or a named field."""
    if choice in (None, "none"):
        return None
    if choice == "auto":
        return next((f for f in EXPORT_ORDER if dataset.has_sample_field(f)), None)
    if not dataset.has_sample_field(choice):
        raise ValueError(f"no mask field {choice!r} in {dataset.name!r} (masks: "
                         f"{', '.join(f for f in dataset.get_field_schema() if f.startswith('mask_')) or 'none'})")
    return choice
