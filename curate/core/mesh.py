"""MediaPipe's 468-point face mesh: the canonical 3D face, the mesh -> iBUG 68 index map, and rotated crops.

Pure geometry (numpy + OpenCV), no models. Coordinates everywhere are camera-like: x to the image's right,
y down, z into the scene (FaceMesh's z: smaller is closer to the camera, same scale as x).

The canonical face (``curate/data/mediapipe/canonical_face.npz``) is MediaPipe's ``canonical_face_model``
(Apache-2.0, see ``curate/data/mediapipe/NOTICE.md``): 468 vertices in centimetres, its triangles and the
32 weighted points MediaPipe's own geometry pipeline fits the pose with.
"""
from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from typing import NamedTuple

import cv2
import numpy as np

from curate.core.align import matrix_scale

# iBUG 68 index i is mesh vertex MESH_TO_68[i]: per mirror pair of iBUG points, the mirror pair of mesh vertices
# closest (median over faces) to where dlib's 68-point predictor puts them on the sample photos' and clip's
# near-frontal faces; bench/mesh_map.py re-derives it. Median error 0.067 inter-ocular distances.
# Jaw 0-16, brows 17-26, nose 27-35, eyes 36-47 (lids), outer lips 48-59, inner lips 60-67.
MESH_TO_68 = np.array(
    [127, 93, 132, 58, 172, 150, 149, 148, 152, 377, 378, 379, 397, 288, 361, 323, 356,  # jaw
     124, 53, 52, 65, 55, 285, 295, 282, 283, 353,  # brows
     168, 197, 5, 4, 240, 97, 164, 326, 460,  # nose
     7, 159, 158, 155, 153, 144, 382, 385, 386, 249, 373, 380,  # eyes
     61, 42, 72, 11, 302, 272, 291, 405, 314, 17, 84, 181,  # outer lips
     77, 82, 13, 312, 307, 316, 14, 86],  # inner lips
    dtype=np.int64,
)

# named mesh vertices the measures use
NOSE_TIP = 1
RIGHT_EYE_CORNERS = (33, 133)  # subject's right eye (image left): outer, inner
LEFT_EYE_CORNERS = (362, 263)  # subject's left eye (image right): inner, outer
RIGHT_EYE_LIDS = ((159, 145), (160, 144), (158, 153))  # (upper, lower) pairs
LEFT_EYE_LIDS = ((386, 374), (385, 380), (387, 373))
MOUTH_CORNERS = (61, 291)
INNER_LIPS = ((13, 14), (82, 87), (312, 317))  # (upper, lower) pairs
UPPER_LIP_TOP, LOWER_LIP_BOTTOM = 0, 17
RIGHT_BROW = (70, 63, 105, 66, 107)
LEFT_BROW = (336, 296, 334, 293, 300)

# BlazeFace's 6 keypoints as mesh vertices (for the pose of a face whose mesh failed): eye centres are
# means of the lid vertices, mouth centre of the inner lips; tragions are the mesh's nearest points.
KEYPOINT_VERTICES = (
    (33, 133, 159, 145), (362, 263, 386, 374), (1,), (13, 14), (234,), (454,),
)


class Roi(NamedTuple):
    """A rotated square region: centre (px), side (px) and rotation (radians, counter-clockwise on screen)."""

    cx: float
    cy: float
    size: float
    angle: float


@lru_cache(maxsize=1)
def canonical_face() -> dict[str, np.ndarray]:
    """MediaPipe's canonical face in camera-like coordinates: vertices (468x3), uv, triangles, fit weights."""
    path = files("curate") / "data" / "mediapipe" / "canonical_face.npz"
    with path.open("rb") as fh:
        data = dict(np.load(fh, allow_pickle=False))
    verts = data["vertices"].astype(np.float64) * np.array([1.0, -1.0, -1.0])  # y up, z out -> y down, z in
    out = {
        "vertices": verts,
        "uv": data["uv"].astype(np.float64),
        "triangles": data["triangles"].astype(np.int64),
        "fit_ids": data["procrustes_ids"].astype(np.int64),
        "fit_weights": data["procrustes_weights"].astype(np.float64),
    }
    for arr in out.values():
        arr.setflags(write=False)
    return out


@lru_cache(maxsize=1)
def mesh_mirror() -> np.ndarray:
    """Index of each mesh vertex's left-right twin (itself on the midline), from the canonical face."""
    verts = canonical_face()["vertices"]
    flipped = verts * np.array([-1.0, 1.0, 1.0])
    twin = np.linalg.norm(verts[:, None] - flipped[None], axis=2).argmin(axis=1)
    twin.setflags(write=False)
    return twin


def mirror_mesh(mesh: np.ndarray, width: float) -> np.ndarray:
    """The same mesh in an image flipped left-right: x mirrored, vertices swapped with their twins."""
    out = np.asarray(mesh, dtype=np.float64).copy()
    out[:, 0] = (width - 1) - out[:, 0]  # pixel centres at integers, as in mirror_landmarks
    return out[mesh_mirror()]


def mesh_to_68(mesh: np.ndarray) -> np.ndarray:
    """The 68 iBUG landmarks (68x2, same pixels) of a 468-point mesh."""
    return np.asarray(mesh, dtype=np.float64)[MESH_TO_68, :2].copy()


def keypoints_from_mesh(mesh: np.ndarray) -> np.ndarray:
    """BlazeFace's 6 keypoints (6xD) computed from mesh vertices."""
    pts = np.asarray(mesh, dtype=np.float64)
    return np.stack([pts[list(ids)].mean(axis=0) for ids in KEYPOINT_VERTICES])


def similarity_3d(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted least-squares similarity (scale, 3x3 rotation, translation) taking src points onto dst."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    sc, dc = src - mu_s, dst - mu_d
    cov = (dc * w[:, None]).T @ sc
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign) / (w @ (sc**2).sum(axis=1)))
    return scale, rot, mu_d - scale * rot @ mu_s


def fit_canonical(mesh: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity taking the canonical face onto a mesh (pixels) over MediaPipe's stable fit points."""
    canon = canonical_face()
    ids = canon["fit_ids"]
    return similarity_3d(canon["vertices"][ids], np.asarray(mesh, dtype=np.float64)[ids], canon["fit_weights"])


def frontalise(points: np.ndarray, fit: tuple[float, np.ndarray, np.ndarray]) -> np.ndarray:
    """Points (Nx3, pixels) moved into the canonical face's frame (centimetres, head pose removed)."""
    scale, rot, trans = fit
    return (np.asarray(points, dtype=np.float64) - trans) @ rot / scale


def roi_matrix(roi: Roi, size: int) -> np.ndarray:
    """2x3 matrix taking image pixels into a ``size`` square crop of the rotated ROI (ROI upright)."""
    c, s = np.cos(roi.angle), np.sin(roi.angle)
    k = size / roi.size
    # crop = k * R(-angle) (p - centre) + size/2: the ROI's content turned upright
    rot = np.array([[c, s], [-s, c]]) * k
    return np.hstack([rot, (size / 2.0 - rot @ np.array([roi.cx, roi.cy]))[:, None]])


def roi_from_points(a: np.ndarray, b: np.ndarray, points: np.ndarray, scale: float) -> Roi:
    """Square ROI around the points' box, rotated so the a->b direction is horizontal, scaled by ``scale``."""
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2.0
    # angle that turns the vector a->b to point right on screen (image y is down)
    angle = float(np.arctan2(b[1] - a[1], b[0] - a[0]))
    rel = (pts - centre) @ np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    side = float(np.ptp(rel, axis=0).max()) if len(pts) > 2 else float(np.ptp(pts, axis=0).max())
    return Roi(float(centre[0]), float(centre[1]), max(side, 1.0) * scale, angle)


def crop_roi(rgb: np.ndarray, roi: Roi, size: int, border: int = cv2.BORDER_CONSTANT) -> tuple[np.ndarray, np.ndarray]:
    """The ROI cut out as a ``size`` square RGB crop, and the 2x3 image->crop matrix."""
    matrix = roi_matrix(roi, size)
    crop = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)
    return crop, matrix


def crop_to_image(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Points (NxD, crop pixels; z scaled like x) mapped back into image pixels."""
    pts = np.asarray(points, dtype=np.float64)
    inv = cv2.invertAffineTransform(matrix)
    out = pts.copy()
    out[:, :2] = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
    if pts.shape[1] > 2:
        out[:, 2:] = pts[:, 2:] * matrix_scale(inv)
    return out
