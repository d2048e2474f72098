"""Similarity alignment of 68 landmarks to the mean face: fixed-coverage aligned crops.

The aligned crop puts the frontal projection of the mean face (jaw included) in the middle of a
``size`` x ``size`` square so that the face's bounding box spans ``coverage`` of the side. The
similarity transform (rotation, uniform scale, translation) is fit on the inner-face points
17..67 (brows, eyes, nose, mouth), which are stable across expressions, as faceswap does.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from curate.core.landmarks import INNER_FACE, mean_face_3d

DEFAULT_SIZE = 256
DEFAULT_COVERAGE = 0.75


@lru_cache(maxsize=8)
def mean_face_2d(size: int = DEFAULT_SIZE, coverage: float = DEFAULT_COVERAGE) -> np.ndarray:
    """68x2 frontal mean face in the pixel coordinates of an aligned crop."""
    pts = mean_face_3d()[:, :2]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    scale = coverage * size / float((hi - lo).max())
    out = (pts - (lo + hi) / 2.0) * scale + size / 2.0
    out.setflags(write=False)
    return out


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (2x3) mapping src points onto dst points."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    sc, dc = src - mu_s, dst - mu_d
    cov = dc.T @ sc / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    var_s = (sc**2).sum() / len(src)
    scale = float(np.trace(np.diag(d) @ sign) / var_s)
    mat = np.zeros((2, 3))
    mat[:, :2] = scale * rot
    mat[:, 2] = mu_d - scale * rot @ mu_s
    return mat


def alignment_matrix(
    landmarks: np.ndarray, size: int = DEFAULT_SIZE, coverage: float = DEFAULT_COVERAGE
) -> np.ndarray:
    """2x3 matrix taking source pixels to aligned-crop pixels for these 68 landmarks."""
    target = mean_face_2d(size, coverage)
    return umeyama(np.asarray(landmarks)[INNER_FACE], target[INNER_FACE])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to Nx2 points."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def between_affine(to_a: np.ndarray, to_b: np.ndarray) -> np.ndarray:
    """2x3 matrix from space A into space B, given the matrices taking one common space (a frame) into each."""
    to3 = lambda m: np.vstack([np.asarray(m, dtype=np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])  # noqa: E731
    return (to3(to_b) @ np.linalg.inv(to3(to_a)))[:2]


def matrix_scale(matrix: np.ndarray) -> float:
    """Scale factor of a 2x3 similarity matrix."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, dtype=np.float64)[:, :2]))))


def warp_face(image: np.ndarray, matrix: np.ndarray, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Cut the aligned face out of an image with a 2x3 source-to-crop matrix."""
    interp = cv2.INTER_AREA if matrix_scale(matrix) < 1.0 else cv2.INTER_CUBIC
    return cv2.warpAffine(image, matrix, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def estimate_coverage(crop_landmarks: np.ndarray, size: int) -> float:
    """Coverage an aligned crop was made with, recovered from its 68 landmarks (crop px, ``size`` side)."""
    template = mean_face_2d(size, 1.0)
    matrix = umeyama(np.asarray(crop_landmarks)[INNER_FACE], template[INNER_FACE])
    return 1.0 / matrix_scale(matrix)


def median_coverage(crop_landmarks: list[np.ndarray], sizes: list[int]) -> float:
    """The coverage a set of aligned crops was made with: the median of their estimates, to 4 decimals."""
    return round(float(np.median([estimate_coverage(np.asarray(m), n) for m, n in zip(crop_landmarks, sizes)])), 4)
