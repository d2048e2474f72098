"""`faceset pose`: give stored faces the current pose estimators' angles without reading their sources again.

Each face keeps what its angles need: the mediapipe backend's mesh (x, y on the crop and, from this version,
``mesh_z``), the 68 source landmarks, the detector's keypoints and box, and the crop's alignment matrix. A face
with its 3D mesh gets the mesh estimator; an older mediapipe face (2D mesh only) the corrected 68-point
estimator (bench/pose_fit.py: option d, MAE 3.98 vs the mesh's 3.75); a face whose mesh failed the keypoint
estimator; faces of the 68-point backends (dlib, insightface) solvePnP of their landmarks. ``pose_method``
says which, per face. Anything computed from the angles (gaps, views, the export's balance) reads the fields
again when it runs; expression labels are redone from the stored scores (a face turned past 45 degrees is
"unsure"); identity's reliable faces depend on |yaw|, so `faceset identity` is worth running again.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curate.core.expression import SCORE_NAMES, ExpressionThresholds, label_expression
from curate.core.mesh import MESH_TO_68, crop_to_image
from curate.core.pose import (
    POSE_METHODS,
    Pose,
    estimate_pose,
    pose_from_keypoints,
    pose_from_landmarks,
    pose_from_mesh,
)
from curate.dataset.store import read_columns, write_fields


@dataclass
class PoseSummary:
    """How many faces got new angles, by estimator, and how far yaw moved."""

    faces: int = 0
    methods: Counter = field(default_factory=Counter)
    yaw_change: float = 0.0  # median |new - old| yaw, degrees
    relabelled: int = 0  # faces whose expression label changed with their pose

    def line(self) -> str:
        """One summary line."""
        how = ", ".join(f"{n} {m}" for m, n in self.methods.most_common())
        return (f"pose recomputed for {self.faces} faces ({how}); median yaw change {self.yaw_change:.1f} deg; "
                f"{self.relabelled} expression labels changed with it")


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


def update_pose(ds: Any, progress: bool = True, thresholds: ExpressionThresholds | None = None) -> PoseSummary:
    """Recompute yaw, pitch, roll and pose_method of every face of a dataset from its stored geometry, and the
    expression labels that depend on the pose (from the stored scores: past MAX_YAW a face is "unsure")."""
    from fiftyone.core.utils import deserialize_numpy_array
    from tqdm import tqdm

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
        summary.relabelled = relabel_expressions(ds, thresholds)
    return summary


def relabel_expressions(ds: Any, thresholds: ExpressionThresholds | None = None) -> int:
    """Give the faces with expression scores the label of those scores at their stored yaw; how many changed."""
    from fiftyone import ViewField as F

    if not ds.has_sample_field("expression"):
        return 0
    view = ds.match(F("expression") != None)  # noqa: E711 - faces without scores have no label to redo
    old, yaw = view.values("expression.label"), view.values("yaw")
    scores = {name: view.values(name) for name in SCORE_NAMES if ds.has_sample_field(name)}
    new = [label_expression({n: (v[i] or 0.0) for n, v in scores.items()}, thresholds, yaw[i])
           for i in range(len(old))]
    if new != old:
        view.set_values("expression.label", new)
    return sum(a != b for a, b in zip(old, new))
