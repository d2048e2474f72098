"""Head pose (yaw, pitch, roll in degrees): from a 468-point mesh (the canonical face fitted in 3D, then
calibrated against rendered ground truth), from 68 landmarks (solvePnP against the 3D mean face), or from
BlazeFace's 6 keypoints (solvePnP, calibrated) when a face has no landmarks.

Sign conventions, all as seen on the screen (image x to the right, y down):

* **yaw > 0**: the nose points to the image's right (the subject turns to their own left).
* **pitch > 0**: the nose points up (the subject looks up).
* **roll > 0**: the face is rotated clockwise on screen (the eye line falls to the image's right).
  Rotating an image counter-clockwise by θ degrees (``cv2.getRotationMatrix2D(c, θ, 1)``)
  therefore changes roll by −θ.

A frontal face has (0, 0, 0). Mirroring an image left-right negates yaw and roll and keeps pitch.
The solvePnP camera is near-orthographic (long focal length centred on the face) so the pose does not
depend on where the face sits in the frame. bench/pose_truth.py measures every estimator's error.
"""
from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from curate.analysis.landmarks import mean_face_3d
from curate.analysis.mesh import canonical_face, fit_canonical, keypoints_from_mesh

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
    """Yaw/pitch/roll (degrees, conventions above) of a model-to-camera rotation matrix."""
    forward = rotation @ np.array([0.0, 0.0, -1.0])
    right = rotation @ np.array([1.0, 0.0, 0.0])
    yaw = np.degrees(np.arctan2(forward[0], -forward[2]))
    pitch = np.degrees(np.arctan2(-forward[1], np.hypot(forward[0], forward[2])))
    roll = np.degrees(np.arctan2(right[1], right[0]))
    return Pose(float(yaw), float(pitch), float(roll))


def rotation_from_pose(pose: Pose) -> np.ndarray:
    """Model-to-camera rotation matrix of a pose (the inverse of :func:`pose_from_rotation`)."""
    yaw, pitch, roll = np.radians([pose.yaw, pose.pitch, pose.roll])
    # the face looks along -z; yaw turns it toward +x, pitch toward -y (up), roll turns it clockwise on screen
    ry = np.array([[np.cos(yaw), 0, -np.sin(yaw)], [0, 1, 0], [np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), np.sin(pitch)], [0, -np.sin(pitch), np.cos(pitch)]])
    rz = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
    return ry @ rx @ rz  # roll about the face's own axis first, then pitch, then yaw


def solve_pose(points: np.ndarray, model: np.ndarray) -> Pose:
    """Yaw, pitch and roll of 2D points (px) matching 3D model points (camera-like axes), near-orthographic."""
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
    rotation, _ = cv2.Rodrigues(rvec)
    return pose_from_rotation(rotation)


def estimate_pose(landmarks: np.ndarray) -> Pose:
    """Yaw, pitch and roll in degrees of a face from its 68 landmarks in pixel coordinates."""
    return solve_pose(np.asarray(landmarks, dtype=np.float64)[PNP_POINTS], _model_points())


# Calibration of the mesh and keypoint estimators against rendered ground truth (bench/pose_truth.py, "fit"
# half of the photos): (raw estimate, true angle) knots for |angle|, applied with the sign kept, so mirrored
# faces still get exactly opposite yaw. FaceMesh's points turn less than the head: raw mesh yaw is ~0.7x the
# true yaw (on real clip faces the calibrated yaw agrees with dlib's 68-point solvePnP within 2 deg up to
# 45 deg). Renders past 60 deg are a face mask only, so knots stop at 60; beyond, the raw angle's own
# increments are added unscaled, up to 90.
MESH_YAW_KNOTS = ((0.0, 0.0), (10.3, 15.0), (20.7, 30.0), (32.3, 45.0), (39.2, 60.0))
MESH_PITCH_KNOTS = ((0.0, 0.0), (11.6, 15.0), (22.9, 30.0))
KEYPOINT_YAW_KNOTS = ((0.0, 0.0), (9.4, 15.0), (21.6, 30.0), (36.2, 45.0), (48.3, 60.0))
KEYPOINT_PITCH_KNOTS = ((0.0, 0.0), (10.7, 15.0), (23.5, 30.0))


def calibrate(angle: float, knots: tuple[tuple[float, float], ...]) -> float:
    """Map a raw angle through odd-symmetric (raw, true) knots: piecewise linear, then 1:1 up to 90."""
    raw, true = np.array(knots, dtype=np.float64).T
    value = abs(float(angle))
    if value > raw[-1]:
        mapped = min(90.0, true[-1] + (value - raw[-1]))
    else:
        mapped = float(np.interp(value, raw, true))
    return float(np.sign(angle) * mapped)


def keypoint_pose_raw(keypoints: np.ndarray) -> Pose:
    """Uncalibrated pose of BlazeFace's 6 keypoints against the canonical face's matching points."""
    return solve_pose(keypoints, keypoints_from_mesh(canonical_face()["vertices"]))


def pose_from_keypoints(keypoints: np.ndarray) -> Pose:
    """Rough yaw, pitch and roll from BlazeFace's 6 keypoints (for faces whose mesh failed), calibrated."""
    raw = keypoint_pose_raw(keypoints)
    return Pose(calibrate(raw.yaw, KEYPOINT_YAW_KNOTS), calibrate(raw.pitch, KEYPOINT_PITCH_KNOTS), raw.roll)


def mesh_pose_raw(mesh: np.ndarray) -> Pose:
    """Uncalibrated pose of a 468-point 3D mesh: rotation of the canonical face fitted to it in 3D."""
    _, rotation, _ = fit_canonical(mesh)
    return pose_from_rotation(rotation)


def pose_from_mesh(mesh: np.ndarray) -> Pose:
    """Yaw, pitch and roll of a 468-point 3D mesh: the canonical face's 3D fit, calibrated to true angles."""
    raw = mesh_pose_raw(mesh)
    return Pose(calibrate(raw.yaw, MESH_YAW_KNOTS), calibrate(raw.pitch, MESH_PITCH_KNOTS), raw.roll)
