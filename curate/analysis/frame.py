"""Per-frame analysis: faces -> aligned crops and every measure we store. No database code here,
so worker processes stay light."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curate.analysis.expression import image_expression
from curate.analysis.protocols import AnalyzedFace, FaceAnalyzer
from curate.analysis.registry import create_analyzer
from curate.core.align import (
    DEFAULT_COVERAGE,
    DEFAULT_SIZE,
    alignment_matrix,
    matrix_scale,
    transform_points,
    warp_face,
)
from curate.core.expression import (
    ExpressionThresholds,
    expression_scores,
    label_expression,
    mesh_expression,
)
from curate.core.hashing import hash_to_hex, perceptual_hash
from curate.core.media import write_image
from curate.core.pose import POSE_METHODS, Pose, estimate_pose, pose_from_keypoints, pose_from_mesh
from curate.core.quality import blur_score, brightness, face_mask


@dataclass(frozen=True)
class AnalysisSettings:
    """Everything a worker needs to turn frames into face records."""

    backend: str = "mediapipe"
    backend_options: tuple[tuple[str, Any], ...] = ()
    size: int = DEFAULT_SIZE
    coverage: float = DEFAULT_COVERAGE
    min_size: int = 0
    thresholds: ExpressionThresholds = field(default_factory=ExpressionThresholds)
    crops_dir: str = "."
    jpeg_quality: int = 95


def source_id(path: Path) -> str:
    """Short stable id of a source file's absolute path."""
    return hashlib.sha1(str(Path(path).absolute()).encode("utf-8", "surrogatepass")).hexdigest()[:10]


def face_key(path: Path, frame: int, index: int) -> str:
    """Unique, stable key of one face: source, frame and left-to-right index."""
    return f"{source_id(path)}_{frame:07d}_{index:02d}"


def face_size(landmarks: np.ndarray) -> float:
    """Size of the face in source pixels: the larger side of the landmarks' bounding box."""
    pts = np.asarray(landmarks)
    return float(np.ptp(pts, axis=0).max())


def face_pose(face: AnalyzedFace) -> Pose:
    """Head pose of a face: from its 3D mesh, else its 68 landmarks, else (no landmarks) the keypoints."""
    return face_pose_and_method(face)[0]


def face_pose_and_method(face: AnalyzedFace) -> tuple[Pose, str]:
    """Head pose of a face and the estimator that gave it (stored as ``pose_method``)."""
    if face.mesh is not None:
        return pose_from_mesh(face.mesh), POSE_METHODS["mesh"]
    if not face.landmarks_ok and face.keypoints is not None:
        return pose_from_keypoints(face.keypoints, face.bbox), POSE_METHODS["keypoints"]
    return estimate_pose(face.landmarks), POSE_METHODS["68"]


def face_expression(face: AnalyzedFace, rgb: np.ndarray | None = None) -> dict[str, float] | None:
    """Expression scores from the mesh (+ iris), else the 68 landmarks; None when the landmarks were guessed.
    With a mesh, ``smile`` is the learned model's probability: on mesh features and the emotion network's view
    of the face in ``rgb`` (the frame the face was found in), or on the mesh features alone without it."""
    if face.mesh is not None:
        if rgb is None:
            return mesh_expression(face.mesh, face.eyes)
        return image_expression(face.mesh, face.eyes, rgb, face.landmarks)
    if not face.landmarks_ok:
        return None
    return expression_scores(face.landmarks)


def mesh_fields(mesh: np.ndarray, matrix: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """The dense mesh as stored: x, y on the crop (relative to its side) and each point's depth in the same unit."""
    return {"mesh": (transform_points(mesh[:, :2], matrix) / size).astype(np.float32),
            "mesh_z": (mesh[:, 2] * matrix_scale(matrix) / size).astype(np.float32)}


def describe_face(rgb: np.ndarray, face: AnalyzedFace, settings: AnalysisSettings) -> tuple[dict[str, Any], np.ndarray]:
    """The stored record of one face and its aligned RGB crop."""
    matrix = alignment_matrix(face.landmarks, settings.size, settings.coverage)
    crop = warp_face(rgb, matrix, settings.size)
    aligned = transform_points(face.landmarks, matrix)
    mask = face_mask(aligned, settings.size)
    (yaw, pitch, roll), pose_method = face_pose_and_method(face)
    scores = face_expression(face, rgb)
    record = {
        "bbox": [float(v) for v in face.bbox],
        "det_score": float(face.score),
        "source_landmarks": np.round(face.landmarks, 2).tolist(),
        "aligned_landmarks": (aligned / settings.size).tolist(),
        "align_matrix": matrix.tolist(),
        "yaw": yaw,
        "pitch": pitch,
        "roll": roll,
        "blur": blur_score(crop, mask),
        "brightness": brightness(crop, mask),
        "face_size": face_size(face.landmarks),
        "crop_hash": hash_to_hex(perceptual_hash(crop)),
        "embedding": np.asarray(face.embedding, dtype=np.float32),
        "expression": label_expression(scores, settings.thresholds, yaw) if scores else None,
        "expression_scores": scores,
        "landmarks_ok": bool(face.landmarks_ok),
        "pose_method": pose_method,
    }
    if face.mesh is not None:
        record.update(mesh_fields(face.mesh, matrix, settings.size))
    if face.keypoints is not None:
        record["keypoints"] = np.round(face.keypoints, 2).tolist()
    return record, crop


@dataclass
class FrameResult:
    """Faces found in one frame (records with crop paths), or the error that stopped it."""

    source: str
    frame: int
    faces: list[dict[str, Any]]
    small: int = 0
    error: str | None = None


class FrameAnalyzer:
    """Turns frames into face records with crops on disk; one per process."""

    def __init__(self, settings: AnalysisSettings, analyzer: FaceAnalyzer | None = None):
        self.settings = settings
        self.analyzer = analyzer or create_analyzer(settings.backend, **dict(settings.backend_options))

    def __call__(self, source: str, frame: int, rgb: np.ndarray) -> FrameResult:
        """Analyse one frame of a source."""
        try:
            return self._records(source, frame, rgb, self.analyzer.analyze(rgb))
        except Exception as exc:  # one bad frame must not stop the run
            return FrameResult(source, frame, [], error=f"analysis failed: {type(exc).__name__}: {exc}")

    def many(self, source: str, frames: list[tuple[int, np.ndarray]]) -> list[FrameResult]:
        """Analyse several frames of a source, each model stage over all of them in one batch where the backend
        can (a GPU's way); the same records as one call per frame. A failing batch is redone frame by frame."""
        analyze_many = getattr(self.analyzer, "analyze_many", None)
        if analyze_many is None or len(frames) < 2:
            return [self(source, index, rgb) for index, rgb in frames]
        try:
            found = analyze_many([rgb for _, rgb in frames])
        except Exception:  # one bad frame: each frame alone, so only it reports the error
            return [self(source, index, rgb) for index, rgb in frames]
        out = []
        for (index, rgb), faces in zip(frames, found):
            try:
                out.append(self._records(source, index, rgb, faces))
            except Exception as exc:
                out.append(FrameResult(source, index, [], error=f"analysis failed: {type(exc).__name__}: {exc}"))
        return out

    def _records(self, source: str, frame: int, rgb: np.ndarray, faces: list[AnalyzedFace]) -> FrameResult:
        s = self.settings
        records, small = [], 0
        for index, face in enumerate(faces):
            if face_size(face.landmarks) < s.min_size:
                small += 1
                continue
            record, crop = describe_face(rgb, face, s)
            key = face_key(Path(source), frame, index)
            path = Path(s.crops_dir) / f"{key}.jpg"
            write_image(crop, path, s.jpeg_quality)
            record.update(face_key=key, face_index=index, filepath=str(path), frame_size=[rgb.shape[1], rgb.shape[0]])
            records.append(record)
        return FrameResult(source, frame, records, small)


def describe_known_face(
    rgb: np.ndarray, landmarks: np.ndarray, embedder: Any, settings: AnalysisSettings,
    bbox: tuple[float, float, float, float] | None = None, score: float = 1.0,
    mesh: np.ndarray | None = None, eyes: np.ndarray | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Record and crop of a face whose 68 landmarks are already known (imported sets): no detection.

    Expression: without ``mesh`` the 68-point scores (what imports get today: their files hold 68 points);
    given the face's 468-point ``mesh`` (+ iris ``eyes``, source pixels) the same scores as an extracted face
    with a mesh — the learned smile on the mesh and the emotion network's view of ``rgb`` — and the mesh is
    stored. Pose and alignment stay with the known 68 points either way."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(68, 2)
    if bbox is None:
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        bbox = (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
    face = AnalyzedFace(tuple(float(v) for v in bbox), float(score), pts, embedder.embed(rgb, pts))
    record, crop = describe_face(rgb, face, settings)
    if mesh is not None:
        mesh = np.asarray(mesh, np.float64)
        scores = image_expression(mesh, eyes, rgb, pts)
        record["expression_scores"] = scores
        record["expression"] = label_expression(scores, settings.thresholds, record["yaw"])
        record.update(mesh_fields(mesh, np.asarray(record["align_matrix"]), settings.size))
    return record, crop
