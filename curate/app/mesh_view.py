"""The dense face mesh in the App: a view's stored meshes (float32 arrays) drawn as FiftyOne Keypoints.

Every face the mediapipe backend meshed stores its 468 points as the array field ``mesh`` (relative to the
aligned crop), which is cheap to write at extraction time. The App draws ``Keypoints``, so this writes them
for the faces you look at: ``draw_mesh(view)`` or the App operator *faceset: draw the face mesh*.
"""
from __future__ import annotations

from typing import Any

import fiftyone as fo
import numpy as np

MESH_KEYPOINTS = "mesh_keypoints"


def draw_mesh(samples: Any, field: str = MESH_KEYPOINTS, limit: int | None = None) -> int:
    """Write the meshes of the samples (a dataset or view) as Keypoints in ``field``; returns how many."""
    view = samples.exists("mesh")
    if limit is not None:
        view = view.limit(limit)
    ids, meshes = view.values(["id", "mesh"])
    if not ids:
        return 0
    values = {
        sid: fo.Keypoints(keypoints=[fo.Keypoint(label="mesh", points=np.asarray(mesh, dtype=np.float64).round(4).tolist())])
        for sid, mesh in zip(ids, meshes)
    }
    view._dataset.set_values(field, values, key_field="id")
    return len(values)
