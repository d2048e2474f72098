"""Expression of a face image: the geometry of :mod:`curate.core.expression` with the models that look at the
pixels — the Human emotion network's logits for the learned smile and the iris model's eyelid contours — and
:func:`expression_from_crop`, the scores of a stored face recomputed from its aligned crop (relabelling without
the source video)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from curate.core.expression import expression_scores, mesh_expression, smile_model
from curate.core.mesh import mesh_to_68


def face_logits(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The emotion network's mirror-averaged logits (7) of one face, on the crop the smile model was fitted with."""
    from curate.analysis.backends.human.emotion import emotion_logits, parse_crop

    return emotion_logits(rgb, [landmarks], parse_crop(smile_model().emotion_crop))[0]


def image_expression(mesh: np.ndarray, eyes: np.ndarray | None, rgb: np.ndarray,
                     landmarks: np.ndarray | None = None) -> dict[str, float]:
    """The stored scores of a face with a mesh, seen in its image: the learned smile uses the emotion network on
    ``rgb`` at the face's 68 ``landmarks`` (from the mesh when not given)."""
    return mesh_expression(mesh, eyes, face_logits(rgb, mesh_to_68(mesh) if landmarks is None else landmarks))


@lru_cache(maxsize=1)
def iris_landmarker():  # noqa: ANN201
    """The FaceMesh landmarker with its iris model (cached): eyelid contours of a face with a mesh."""
    from curate.analysis.backends.mediapipe.facemesh import FaceMeshLandmarker

    return FaceMeshLandmarker(iris=True)


def expression_from_crop(crop: np.ndarray, landmarks: np.ndarray, mesh: np.ndarray | None = None,
                         mesh_z: np.ndarray | None = None, iris: bool = True) -> dict[str, float] | None:
    """Expression scores of a stored face recomputed from its aligned crop, without the source frame.

    ``crop``: the stored RGB crop (the sample's ``filepath``); ``landmarks``: its 68 points in crop pixels
    (``transform_points(source_landmarks, align_matrix)``); ``mesh``: the stored mesh (x, y relative to the
    crop) and ``mesh_z`` its depth in the same unit. With a mesh the learned smile uses the emotion network on
    the crop and, with ``iris``, eye contours found again by the iris model on the crop (datasets do not store
    them); without a mesh the 68-point scores. Stored meshes without ``mesh_z`` (old datasets) give None: the
    pose-free features need the depth. On GENKI-4K the result agrees with the frame's (bench/smile_fit.py)."""
    size = crop.shape[1]
    if mesh is None:
        return expression_scores(np.asarray(landmarks, np.float64))
    if mesh_z is None:
        return None
    pts = np.column_stack([np.asarray(mesh, np.float64).reshape(-1, 2) * size,
                           np.asarray(mesh_z, np.float64).ravel() * size])
    eyes = iris_landmarker().eyes(crop, pts) if iris else None
    return image_expression(pts, eyes, crop, landmarks)
