"""`faceset pose`: give stored faces the current pose estimators' angles without reading their sources again.

Each face keeps what its angles need: the mediapipe backend's mesh (x, y on the crop and, from this version,
``mesh_z``), the 68 source landmarks, the detector's keypoints and box, and the crop's alignment matrix. A face
with its 3D mesh gets the mesh estimator; an older mediapipe face (2D mesh only) the corrected 68-point
estimator (bench/pose_fit.py: option d, MAE 3.98 vs the mesh's 3.75); a face whose mesh failed the keypoint
estimator; faces of the 68-point backends (dlib, insightface) solvePnP of their landmarks. ``pose_method``
says which, per face. Anything computed from the angles (gaps, views, the export's balance) reads the fields
again when it runs; identity's reliable faces depend on |yaw|, so `faceset identity` is worth running again.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curate.analysis.mesh import MESH_TO_68, crop_to_image
from curate.analysis.pose import (
    POSE_METHODS,
    Pose,
    estimate_pose,
    pose_from_keypoints,
    pose_from_landmarks,
    pose_from_mesh,
)


@dataclass
class PoseSummary:
    """How many faces got new angles, by estimator, and how far yaw moved."""

    faces: int = 0
    methods: Counter = field(default_factory=Counter)
    yaw_change: float = 0.0  # median |new - old| yaw, degrees

    def line(self) -> str:
        """One summary line."""
        how = ", ".join(f"{n} {m}" for m, n in self.methods.most_common())
        return f"pose recomputed for {self.faces} faces ({how}); median yaw change {self.yaw_change:.1f} deg"


def source_mesh(mesh: np.ndarray, depth: np.ndarray, matrix: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 468x3 mesh in source pixels from its stored form (x, y, depth relative to the crop) and the crop's
    matrix; the crop's side is recovered from the 68 landmarks, which are mesh points in source pixels."""
    rel = np.asarray(mesh, dtype=np.float64)[MESH_TO_68]
    m = np.asarray(matrix, dtype=np.float64)
    crop_px = np.asarray(landmarks, dtype=np.float64) @ m[:, :2].T + m[:, 2]
    size = float((crop_px * rel).sum() / max((rel * rel).sum(), 1e-12))
    pts = np.column_stack([np.asarray(mesh, dtype=np.float64), np.asarray(depth, dtype=np.float64)]) * size
    return crop_to_image(pts, m)


def stored_face_pose(face: dict[str, Any]) -> tuple[Pose, str]:
    """Angles and estimator of one stored face (its fields as read from the dataset)."""
    if face.get("mesh") is not None and face.get("mesh_z") is not None:
        mesh = source_mesh(face["mesh"], face["mesh_z"], face["align_matrix"], face["source_landmarks"])
        return pose_from_mesh(mesh), POSE_METHODS["mesh"]
    landmarks = np.asarray(face["source_landmarks"], dtype=np.float64)
    if face.get("landmarks_ok") is False and face.get("detector_keypoints"):
        return pose_from_keypoints(np.asarray(face["detector_keypoints"]), tuple(face["bbox"])), POSE_METHODS["keypoints"]
    if face.get("backend") == "mediapipe":  # 68 points of the mesh: the corrected 68-point estimator
        return pose_from_landmarks(landmarks), POSE_METHODS["stored68"]
    return estimate_pose(landmarks), POSE_METHODS["68"]


def update_pose(ds: Any, progress: bool = True) -> PoseSummary:
    """Recompute yaw, pitch, roll and pose_method of every face of a dataset from its stored geometry."""
    from fiftyone.core.utils import deserialize_numpy_array
    from tqdm import tqdm

    from curate.store import read_columns, write_fields

    schema = ds.get_field_schema()
    wanted = ["source_landmarks", "align_matrix", "bbox", "landmarks_ok", "backend", "detector_keypoints", "mesh",
              "mesh_z", "yaw"]
    cols = read_columns(ds, [f for f in wanted if f in schema])
    n = len(cols["id"])
    summary = PoseSummary(faces=n)
    angles: dict[str, list] = {"yaw": [], "pitch": [], "roll": [], "pose_method": []}
    for i in tqdm(range(n), desc="pose", unit="face", disable=not progress, leave=False, dynamic_ncols=True):
        face = {k: v[i] for k, v in cols.items()}
        for key in ("mesh", "mesh_z"):  # arrays come from the database as FiftyOne's compressed .npy bytes
            if isinstance(face.get(key), bytes):
                face[key] = deserialize_numpy_array(face[key])
        pose, method = stored_face_pose(face)
        for key, value in zip(("yaw", "pitch", "roll"), pose):
            angles[key].append(float(value))
        angles["pose_method"].append(method)
        summary.methods[method] += 1
    if n:
        old = np.asarray([np.nan if v is None else v for v in cols.get("yaw", [None] * n)], dtype=float)
        summary.yaw_change = float(np.nanmedian(np.abs(np.asarray(angles["yaw"]) - old))) if np.isfinite(old).any() else 0.0
        write_fields(ds, cols["id"], angles)
    return summary
