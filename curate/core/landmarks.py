"""The iBUG 68-point landmark layout: index groups, the mirror permutation and the mean face."""
from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import numpy as np

JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)  # subject's right, image left
LEFT_BROW = slice(22, 27)
NOSE = slice(27, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
OUTER_MOUTH = slice(48, 60)
INNER_MOUTH = slice(60, 68)
MOUTH = slice(48, 68)
INNER_FACE = slice(17, 68)  # everything but the jaw line: what alignment uses

# index i on a face maps to MIRROR[i] on the horizontally flipped face
MIRROR = np.array(
    list(range(16, -1, -1))  # jaw
    + list(range(26, 21, -1)) + list(range(21, 16, -1))  # brows
    + [27, 28, 29, 30] + [35, 34, 33, 32, 31]  # nose
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer mouth
    + [64, 63, 62, 61, 60, 67, 66, 65],  # inner mouth
    dtype=np.int64,
)


@lru_cache(maxsize=1)
def mean_face_3d() -> np.ndarray:
    """Symmetric 68x3 mean face (x right, y down, z toward viewer); see curate/data/NOTICE.md."""
    path = files("curate") / "data" / "mean_face_68.npy"
    with path.open("rb") as fh:
        shape = np.load(fh, allow_pickle=False).astype(np.float64)
    mirrored = shape[MIRROR] * np.array([-1.0, 1.0, 1.0])
    shape = (shape + mirrored) / 2.0  # exactly left-right symmetric, centred on x = 0
    shape.setflags(write=False)
    return shape


def mirror_landmarks(landmarks: np.ndarray, width: float) -> np.ndarray:
    """Landmarks of the same face in an image flipped left-right (coordinates and labels)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    flipped = pts.copy()
    flipped[:, 0] = (width - 1) - pts[:, 0]
    return flipped[MIRROR]


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2): the subject's right then left eye centre (mean of each eye's six points)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    return np.stack([pts[RIGHT_EYE].mean(axis=0), pts[LEFT_EYE].mean(axis=0)])


def fill_parts(landmarks: np.ndarray, size: int, parts: tuple[slice, ...]) -> np.ndarray:
    """uint8 (size, size) mask, 1 inside the convex hull of each landmark group in ``parts`` (crop px)."""
    import cv2

    pts = np.round(np.asarray(landmarks, dtype=np.float64)).astype(np.int32)
    out = np.zeros((size, size), np.uint8)
    for part in parts:
        cv2.fillConvexPoly(out, cv2.convexHull(pts[part]), 1)
    return out


def landmark_hull(landmarks: np.ndarray) -> np.ndarray:
    """Convex hull of the landmarks as an int32 polygon for cv2.fillConvexPoly."""
    import cv2

    return cv2.convexHull(np.round(landmarks).astype(np.int32)).reshape(-1, 2)
