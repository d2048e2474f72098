"""faceswap's aligned-face geometry, so exported face PNGs are the crops faceswap cuts itself.

The facts, as faceswap documents them in ``lib/align`` (constants.py, aligned_face.py, pose.py, aligned_utils.py):

- the "legacy" matrix is the least-squares similarity (Umeyama, with scale) of landmarks 17-67 onto its 51-point
  mean face in a unit square;
- the pose is ``cv2.solvePnP`` (iterative, no distortion) of 26 of those aligned landmarks against its 26-point
  3D mean head, camera focal 4 and centre 0.5; the "head" centering moves the matrix by the projection of the
  head centre (0, 0, -2.3) minus 0.5 ("face": (0, -1.5, 4.2); "legacy": none);
- padding per side = round(size * (extract_ratio + coverage - 1) / (2 * coverage)) with extract ratios
  legacy 0.375, face 0.5, head 0.625; the matrix is scaled by ``size - 2 * padding`` and shifted by the padding;
- the image is cut with ``cv2.warpAffine`` (zero border), cubic when enlarging, area when shrinking.

faceswap's extracted faces are head-centred at coverage 1.0 of the extract size. The two mean-face tables are
faceswap's published alignment constants (``curate/data/faceswap_geometry.npz``, see curate/data/NOTICE.md),
needed as they are for the crops to match.
"""
from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import cv2
import numpy as np

from curate.core.align import transform_points, umeyama

EXTRACT_RATIOS = {"legacy": 0.375, "face": 0.5, "head": 0.625}
CENTER_POINTS = {"legacy": (0.0, 0.0, 0.0), "head": (0.0, 0.0, -2.3), "face": (0.0, -1.5, 4.2)}
DEFAULT_SIZE, DEFAULT_COVERAGE, DEFAULT_CENTERING = 512, 1.0, "head"


@lru_cache(maxsize=1)
def _constants() -> dict[str, np.ndarray]:
    with (files("curate") / "data" / "faceswap_geometry.npz").open("rb") as fh:
        return dict(np.load(fh, allow_pickle=False))


def legacy_matrix(landmarks: np.ndarray) -> np.ndarray:
    """2x3 matrix from frame pixels into faceswap's unit "legacy" face space (68 landmarks)."""
    return umeyama(np.asarray(landmarks, dtype=np.float64)[17:], _constants()["mean_face_51"])


def center_offset(landmarks: np.ndarray, centering: str = DEFAULT_CENTERING) -> np.ndarray:
    """How far (unit face space) the crop centre moves from the legacy centre for a centering."""
    if centering == "legacy":
        return np.zeros(2)
    rvec, tvec = head_pose(landmarks)
    point = np.array([CENTER_POINTS[centering]], dtype=np.float64)
    return cv2.projectPoints(point, rvec, tvec, CAMERA, np.zeros((4, 1)))[0].reshape(2) - 0.5


CAMERA = np.array([[4.0, 0.0, 0.5], [0.0, 4.0, 0.5], [0.0, 0.0, 1.0]])  # faceswap's unit face space camera


def head_pose(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """faceswap's head pose of 68 landmarks: (rvec, tvec) of its 26-point 3D mean head in legacy face space."""
    c = _constants()
    aligned = transform_points(landmarks, legacy_matrix(landmarks))
    _, rvec, tvec = cv2.solvePnP(c["mean_face_3d_26"], aligned[c["core_landmarks"]], CAMERA, np.zeros((4, 1)),
                                 flags=cv2.SOLVEPNP_ITERATIVE)
    return rvec, tvec


def pitch_yaw_roll(landmarks: np.ndarray) -> tuple[float, float, float]:
    """The (pitch, yaw, roll) degrees faceswap stores and sorts by: its head pose's Euler angles as
    ``cv2.decomposeProjectionMatrix`` gives them."""
    rvec, tvec = head_pose(landmarks)
    proj = np.hstack([cv2.Rodrigues(rvec)[0], tvec])
    euler = cv2.decomposeProjectionMatrix(proj)[-1].ravel()
    return float(euler[0]), float(euler[1]), float(euler[2])


def padding(size: int, coverage: float = DEFAULT_COVERAGE, centering: str = DEFAULT_CENTERING) -> int:
    """Pixels of padding on each side of an aligned face of this size, coverage and centering."""
    return int(round(size * (EXTRACT_RATIOS[centering] + coverage - 1) / (2 * coverage)))


def aligned_matrix(landmarks: np.ndarray, size: int = DEFAULT_SIZE, coverage: float = DEFAULT_COVERAGE,
                   centering: str = DEFAULT_CENTERING) -> np.ndarray:
    """2x3 matrix from frame pixels into faceswap's aligned face of ``size`` px (its ``adjusted_matrix``)."""
    matrix = legacy_matrix(landmarks)
    matrix[:, 2] -= center_offset(landmarks, centering)
    pad = padding(size, coverage, centering)
    matrix = matrix * (size - 2 * pad)
    matrix[:, 2] += pad
    return matrix


def cut_face(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The aligned face faceswap cuts with this matrix (zero border; cubic up, area down)."""
    x_scale = float(np.hypot(matrix[0, 0], matrix[0, 1]))
    y_scale = float((matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0]) / x_scale) if x_scale else 0.0
    interp = cv2.INTER_CUBIC if (x_scale + y_scale) / 2 >= 1.0 else cv2.INTER_AREA
    return cv2.warpAffine(image, matrix, (size, size), flags=interp)
