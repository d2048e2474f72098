"""DeepFaceLab's aligned-face geometry per face type, so exported aligned JPGs are the crops DFL cuts itself.

The facts, from DeepFaceLab's ``facelib/LandmarksProcessor.py`` (``get_transform_mat``) and ``FaceType.py``:

- Umeyama (with scale) of landmarks 17-48 and 54 onto its 33-point mean face ``landmarks_2D_new`` in a unit
  square; the unit square's corners and centre taken back into the frame;
- the crop square is centred there, along the square's diagonals, half-diagonal = |corner0 - corner2| *
  (padding * sqrt(2) + 0.5), with padding per face type: half_face 0, midfull_face 0.0675, full_face 0.2109375,
  whole_face 0.40, head 0.70; whole_face moves the centre up by 7 % of the square's side, head by 50 % and
  sideways by its averaged yaw (damped by |tanh(2 yaw)|);
- ``cv2.getAffineTransform`` of three of those corners onto (0, 0), (size, 0), (size, size);
- DFL's extractor warps with ``cv2.warpAffine(image, mat, (size, size), cv2.INTER_LANCZOS4)``: the flag lands
  in the ``dst`` argument, so the interpolation is OpenCV's default, bilinear.

The mean-face table is DeepFaceLab's published constant (``curate/data/dfl_geometry.npz``, see
curate/data/NOTICE.md).
"""
from __future__ import annotations

import math
from functools import lru_cache
from importlib.resources import files

import cv2
import numpy as np

from curate.core.align import transform_points, umeyama

PADDING = {"half_face": 0.0, "midfull_face": 0.0675, "full_face": 0.2109375, "whole_face": 0.40, "head": 0.70}
FACE_TYPES = tuple(PADDING)
DEFAULT_FACE_TYPE, DEFAULT_SIZE = "full_face", 512


@lru_cache(maxsize=1)
def _mean_face() -> np.ndarray:
    with (files("curate") / "data" / "dfl_geometry.npz").open("rb") as fh:
        return np.load(fh, allow_pickle=False)["landmarks_2d_new"].astype(np.float64)


def averaged_yaw(landmarks: np.ndarray) -> float:
    """DFL's yaw proxy on unit-square landmarks: the right jaw-to-nose width minus the left one."""
    p = np.asarray(landmarks, dtype=np.float64)
    left = ((p[27, 0] - p[0, 0]) + (p[28, 0] - p[1, 0]) + (p[29, 0] - p[2, 0])) / 3.0
    right = ((p[16, 0] - p[27, 0]) + (p[15, 0] - p[28, 0]) + (p[14, 0] - p[29, 0])) / 3.0
    return float(right - left)


def check_face_type(face_type: str) -> str:
    """The face type itself, or ValueError naming the ones DeepFaceLab has."""
    if face_type not in PADDING:
        raise ValueError(f"unknown DeepFaceLab face type {face_type!r}: use one of {', '.join(FACE_TYPES)}")
    return face_type


def transform_mat(landmarks: np.ndarray, size: int = DEFAULT_SIZE, face_type: str = DEFAULT_FACE_TYPE) -> np.ndarray:
    """2x3 matrix from frame pixels into DFL's aligned face of ``size`` px for the face type."""
    check_face_type(face_type)
    pts = np.asarray(landmarks, dtype=np.float64)
    unit = umeyama(np.concatenate([pts[17:49], pts[54:55]]), _mean_face())
    back = cv2.invertAffineTransform(unit)
    g = transform_points(np.array([(0, 0), (1, 0), (1, 1), (0, 1), (0.5, 0.5)], dtype=np.float64), back)
    centre = g[4].copy()
    tb = (g[2] - g[0]) / np.linalg.norm(g[2] - g[0])
    bt = (g[1] - g[3]) / np.linalg.norm(g[1] - g[3])
    mod = np.linalg.norm(g[0] - g[2]) * (PADDING[face_type] * math.sqrt(2.0) + 0.5)
    up = g[0] - g[3]
    if face_type == "whole_face":
        centre += up * 0.07
    elif face_type == "head":
        yaw = averaged_yaw(transform_points(pts, unit))
        yaw *= abs(math.tanh(yaw * 2))
        centre -= (g[0] - g[1]) * (yaw / 2.0)
        centre += up * 0.50
    corners = np.array([centre - tb * mod, centre + bt * mod, centre + tb * mod], dtype=np.float32)
    target = np.array([(0, 0), (size, 0), (size, size)], dtype=np.float32)
    return cv2.getAffineTransform(corners, target).astype(np.float64)


def cut_face(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The aligned face DFL's extractor cuts with this matrix (bilinear, zero border)."""
    return cv2.warpAffine(image, matrix, (size, size))
