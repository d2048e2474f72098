"""Head pose (yaw, pitch, roll in degrees): from a 468-point mesh (the canonical face fitted in 3D), from 68
landmarks (solvePnP against the 3D mean face), or from BlazeFace's 6 keypoints and box (solvePnP) when a face
has no landmarks; the mesh, stored-68-point and keypoint estimates get a learned correction fitted on real
labelled faces (AFLW2000-3D, bench/pose_fit.py: cross-validated MAE 3.75 with a mesh, 4.05 from keypoints
averaged with the mirrored image's detection).

Sign conventions, all as seen on the screen (image x to the right, y down):

* **yaw > 0**: the nose points to the image's right (the subject turns to their own left).
* **pitch > 0**: the nose points up (the subject looks up).
* **roll > 0**: the face is rotated clockwise on screen (the eye line falls to the image's right).
  Rotating an image counter-clockwise by θ degrees (``cv2.getRotationMatrix2D(c, θ, 1)``)
  therefore changes roll by −θ.

The three angles are read in the Euler order of the public pose labels (AFLW2000-3D, 300W-LP): the rotation is
R = Rx(−pitch) · Ry(−yaw) · Rz(roll) — roll about the face's own axis, then yaw, then pitch about the camera's
x axis — so faceset's degrees are those labels' degrees (with AFLW's yaw sign flipped).
A frontal face has (0, 0, 0). Mirroring an image left-right negates yaw and roll and keeps pitch.
The solvePnP camera is near-orthographic (long focal length centred on the face) so the pose does not
depend on where the face sits in the frame. bench/pose_fit.py (real faces) and bench/pose_truth.py (renders
past 60 degrees) measure every estimator's error.
"""
from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from typing import NamedTuple

import cv2
import numpy as np

from curate.core.landmarks import mean_face_3d
from curate.core.mesh import MESH_TO_68, canonical_face, fit_canonical, frontalise, keypoints_from_mesh

# brows, nose, eyes, mouth corners and chin: the points whose 3D position is stable with yaw
PNP_POINTS = np.array(list(range(17, 48)) + [48, 54, 8])
_FOCAL_FACES = 8.0  # focal length in face widths: weak perspective


class Pose(NamedTuple):
    """Head pose in degrees."""

    yaw: float
    pitch: float
    roll: float


def _model_points() -> np.ndarray:
    shape = mean_face_3d().copy()
    shape[:, 2] *= -1.0  # z toward viewer -> camera z (into the scene)
    return shape[PNP_POINTS]


def pose_from_rotation(rotation: np.ndarray) -> Pose:
    """Yaw/pitch/roll (degrees, conventions above) of a model-to-camera rotation matrix, read in the public
    labels' Euler order: R = Rx(-pitch) @ Ry(-yaw) @ Rz(roll)."""
    r = np.asarray(rotation, dtype=np.float64)
    yaw = -np.degrees(np.arcsin(np.clip(r[0, 2], -1.0, 1.0)))
    pitch = -np.degrees(np.arctan2(-r[1, 2], r[2, 2]))
    roll = np.degrees(np.arctan2(-r[0, 1], r[0, 0]))
    return Pose(float(yaw), float(pitch), float(roll))


def rotation_from_pose(pose: Pose) -> np.ndarray:
    """Model-to-camera rotation matrix of a pose (the inverse of :func:`pose_from_rotation`)."""
    yaw, pitch, roll = np.radians([pose[0], pose[1], pose[2]])
    # the face looks along -z; yaw turns it toward +x, pitch toward -y (up), roll turns it clockwise on screen
    ry = np.array([[np.cos(yaw), 0, -np.sin(yaw)], [0, 1, 0], [np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), np.sin(pitch)], [0, -np.sin(pitch), np.cos(pitch)]])
    rz = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
    return rx @ ry @ rz  # roll about the face's own axis first, then yaw, then pitch about the camera's x axis


def solve_rotation(points: np.ndarray, model: np.ndarray) -> np.ndarray:
    """Model-to-camera rotation of 2D points (px) matching 3D model points (camera-like axes), near-orthographic."""
    pts = np.ascontiguousarray(np.asarray(points, dtype=np.float64)[:, :2])
    model = np.ascontiguousarray(model, dtype=np.float64)
    centre = pts.mean(axis=0)
    width = float(np.ptp(pts[:, 0]) + np.ptp(pts[:, 1])) / 2.0 or 1.0
    focal = _FOCAL_FACES * width
    camera = np.array([[focal, 0, centre[0]], [0, focal, centre[1]], [0, 0, 1]], dtype=np.float64)
    model_width = float(np.ptp(model[:, 0]) + np.ptp(model[:, 1])) / 2.0
    tvec = np.array([[0.0], [0.0], [focal * model_width / width]])
    rvec = np.zeros((3, 1))
    ok, rvec, tvec = cv2.solvePnP(
        model, pts, camera, None, rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
    )
    if not ok:
        raise ValueError("solvePnP did not converge")
    return cv2.Rodrigues(rvec)[0]


def solve_pose(points: np.ndarray, model: np.ndarray) -> Pose:
    """Yaw, pitch and roll of 2D points (px) matching 3D model points (camera-like axes), near-orthographic."""
    return pose_from_rotation(solve_rotation(points, model))


def estimate_pose(landmarks: np.ndarray) -> Pose:
    """Yaw, pitch and roll in degrees of a face from its 68 landmarks in pixel coordinates."""
    return solve_pose(np.asarray(landmarks, dtype=np.float64)[PNP_POINTS], _model_points())


# What made a face's angles (stored per face as ``pose_method``; ``faceset pose`` recomputes older ones)
POSE_METHODS = {"mesh": "mesh+aflw-1", "68": "68pnp-1", "keypoints": "keypoints+aflw-1", "stored68": "68pnp+aflw-1"}

# The learned corrections (bench/pose_fit.py --save, fitted on the AFLW2000-3D half in ../shared with exact
# mirrored copies, so yaw and roll stay odd): ridge regressions of (true - base) angles on a basis of the base
# angles plus geometry the base fit leaves out (the mesh's residuals after the canonical fit; the keypoints'
# layout and the detector box). Plain arrays, read without pickles.
MAX_CORRECTION = 30.0  # degrees; on the labelled faces the largest is 28 (mesh yaw past 60): geometry unlike
# any of them (an odd box, a broken mesh) cannot move an angle further
YAW_KNOTS = (15.0, 30.0, 45.0, 60.0)
PITCH_KNOTS = (10.0, 20.0)
RIGHT_EYE, LEFT_EYE = 0, 1  # BlazeFace keypoints: subject's right eye, left eye, nose, mouth, right/left tragion


@lru_cache(maxsize=1)
def pose_weights() -> dict[str, np.ndarray]:
    """The fitted correction weights (curate/data/pose/pose_aflw.npz)."""
    with (files("curate") / "data" / "pose" / "pose_aflw.npz").open("rb") as fh:
        return dict(np.load(fh, allow_pickle=False))


def angle_basis(angles: np.ndarray) -> np.ndarray:
    """Calibration basis of (yaw, pitch, roll) rows: the angles, odd hinges of yaw, hinges of pitch both ways and
    three products, each odd or even under mirroring (yaw, roll -> -yaw, -roll)."""
    a = np.atleast_2d(np.asarray(angles, dtype=np.float64))
    y, p, r = a[:, 0], a[:, 1], a[:, 2]
    cols = [y, p, r]
    cols += [np.sign(y) * np.maximum(np.abs(y) - k, 0.0) for k in YAW_KNOTS]
    cols += [np.maximum(s * p - k, 0.0) for k in PITCH_KNOTS for s in (1.0, -1.0)]
    cols += [y * y / 90.0, np.abs(y) * p / 90.0, y * r / 90.0]
    return np.stack(cols, axis=1)


def pairwise_products(x: np.ndarray) -> np.ndarray:
    """Each row's values and their products x_i * x_j (i <= j)."""
    x = np.atleast_2d(x)
    i, j = np.triu_indices(x.shape[1])
    return np.concatenate([x, x[:, i] * x[:, j]], axis=1)


@lru_cache(maxsize=1)
def mesh_ids() -> np.ndarray:
    """The mesh vertices whose residuals the mesh correction reads: the 68-point map, the fit points, a few more."""
    ids = np.unique(np.r_[MESH_TO_68, canonical_face()["fit_ids"], [1, 33, 263, 133, 362, 234, 454, 10, 152]])
    ids.setflags(write=False)
    return ids


def mesh_pose_inputs(mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(base angles, features) of a 468x3 mesh (px, z into the scene): the canonical face's 3D fit, and
    [angle basis, the fit's residuals (the mesh in the canonical frame minus the canonical face) at mesh_ids]."""
    pts = np.asarray(mesh, dtype=np.float64)
    fit = fit_canonical(pts)
    base = np.array(pose_from_rotation(fit[1]))
    ids = mesh_ids()
    resid = frontalise(pts[ids], fit) - canonical_face()["vertices"][ids]
    return base, np.concatenate([angle_basis(base)[0], resid.ravel()])


def keypoint_layout(keypoints: np.ndarray, bbox: tuple[float, float, float, float]) -> np.ndarray:
    """BlazeFace's 6 keypoints (px) centred, turned so the eye line is level and scaled to unit RMS radius, and
    the detector box's centre offset and size in that frame (15 values)."""
    kps = np.asarray(keypoints, dtype=np.float64)[:, :2]
    eyes = kps[LEFT_EYE] - kps[RIGHT_EYE]
    theta = float(np.arctan2(eyes[1], eyes[0]))
    turn = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre = kps.mean(axis=0)
    xy = (kps - centre) @ turn
    scale = float(np.sqrt((xy**2).sum(axis=1).mean())) or 1.0
    x, y, w, h = bbox
    offset = (np.array([x + w / 2.0, y + h / 2.0]) - centre) @ turn / scale
    return np.concatenate([(xy / scale).ravel(), offset, [np.sqrt(w * h) / scale]])


def keypoint_pose_inputs(keypoints: np.ndarray, bbox: tuple[float, float, float, float]
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(base angles, features) of BlazeFace's 6 keypoints and box: solvePnP against the canonical face's
    matching points, and [angle basis, the keypoint layout and its pairwise products]."""
    base = np.array(keypoint_pose_raw(keypoints))
    return base, np.concatenate([angle_basis(base)[0], pairwise_products(keypoint_layout(keypoints, bbox))[0]])


def landmark_pose_inputs(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(base angles, features) of 68 landmarks: solvePnP against the 3D mean face, and the angle basis."""
    base = np.array(estimate_pose(landmarks))
    return base, angle_basis(base)[0]


def corrected(base: np.ndarray, features: np.ndarray, prefix: str) -> Pose:
    """Base angles plus the named learned correction of their features (at most MAX_CORRECTION), within +-99."""
    w = pose_weights()
    z = (features - w[prefix + "mean"]) / w[prefix + "sd"]
    step = np.clip(z @ w[prefix + "coef"].T + w[prefix + "intercept"], -MAX_CORRECTION, MAX_CORRECTION)
    out = np.clip(base + step, -99.0, 99.0)
    return Pose(float(out[0]), float(out[1]), float(out[2]))


def keypoint_pose_raw(keypoints: np.ndarray) -> Pose:
    """Uncorrected pose of BlazeFace's 6 keypoints against the canonical face's matching points."""
    return solve_pose(keypoints, keypoints_from_mesh(canonical_face()["vertices"]))


def pose_from_keypoints(keypoints: np.ndarray, bbox: tuple[float, float, float, float]) -> Pose:
    """Yaw, pitch and roll from BlazeFace's 6 keypoints and box (faces whose mesh failed), learned correction."""
    return corrected(*keypoint_pose_inputs(keypoints, bbox), "kp_")


def pose_from_landmarks(landmarks: np.ndarray) -> Pose:
    """Yaw, pitch and roll of the 68 points a mesh gave (stored faces without their 3D mesh), learned correction."""
    return corrected(*landmark_pose_inputs(landmarks), "lm_")


def mesh_pose_raw(mesh: np.ndarray) -> Pose:
    """Uncorrected pose of a 468-point 3D mesh: rotation of the canonical face fitted to it in 3D."""
    _, rotation, _ = fit_canonical(mesh)
    return pose_from_rotation(rotation)


def pose_from_mesh(mesh: np.ndarray) -> Pose:
    """Yaw, pitch and roll of a 468-point 3D mesh: the canonical face's 3D fit plus the learned correction."""
    return corrected(*mesh_pose_inputs(mesh), "mesh_")
