"""Image quality of an aligned face: sharpness (blur), brightness and the face mask they use."""
from __future__ import annotations

import cv2
import numpy as np

from curate.core.landmarks import landmark_hull


def face_mask(landmarks: np.ndarray, size: int, erode: int = 0) -> np.ndarray:
    """uint8 mask (255 inside) of the landmark hull in an aligned crop of side ``size``."""
    mask = np.zeros((size, size), dtype=np.uint8)
    cv2.fillConvexPoly(mask, landmark_hull(landmarks), 255)
    if erode > 0:
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1,) * 2))
    return mask


def _grey(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def blur_score(face: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Sharpness: variance of the Laplacian inside the mask (higher is sharper; <~50 is blurry at 256 px)."""
    lap = cv2.Laplacian(_grey(face).astype(np.float64), cv2.CV_64F, ksize=3)
    if mask is not None:
        inner = cv2.erode(mask, np.ones((5, 5), np.uint8))  # keep the hull's own edge out
        values = lap[inner > 0]
        if values.size > 16:
            return float(values.var())
    return float(lap.var())


def brightness(face: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean luma (0-255) of the face inside the mask."""
    grey = _grey(face)
    if mask is not None and np.any(mask):
        return float(grey[mask > 0].mean())
    return float(grey.mean())


def hull_mask(landmarks: np.ndarray, size: int, erode: int = 0) -> np.ndarray:
    """float32 (S, S) 0/1 mask of the 68 landmarks' hull, optionally eroded by ``erode`` px (``face_mask``)."""
    return (face_mask(np.asarray(landmarks)[:68], size, erode) > 0).astype(np.float32)
