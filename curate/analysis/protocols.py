"""The face-analysis protocol: detect -> 68 landmarks -> identity embedding, one stage each."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class ModelsMissingError(RuntimeError):
    """A backend's model files are not on disk; the message says how to get them."""


@dataclass(frozen=True)
class Detection:
    """A detector hit: box (x, y, w, h) in source pixels, the detector's confidence and its keypoints.

    ``keypoints`` are the detector's own points in source pixels where it has them (BlazeFace: right eye,
    left eye, nose tip, mouth centre, right tragion, left tragion — the subject's right is the image's left).
    """

    bbox: tuple[float, float, float, float]
    score: float
    keypoints: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class LandmarkResult:
    """What a landmarker found for one face: 68 points (source px) and, where the model gives them, more.

    ``ok`` is False when the landmark model could not place the face and ``landmarks`` were derived from
    the detector's keypoints instead; ``mesh`` is a dense 3D mesh (Nx3, source px, z into the scene),
    ``eyes`` the eye-contour points of an iris model (2 x M x 3: subject's right eye, then left).
    """

    landmarks: np.ndarray
    ok: bool = True
    mesh: np.ndarray | None = None
    eyes: np.ndarray | None = None


@dataclass(frozen=True)
class AnalyzedFace:
    """One face after all stages: detection, 68 landmarks (source px), embedding, and the extras above."""

    bbox: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    embedding: np.ndarray
    landmarks_ok: bool = True
    mesh: np.ndarray | None = None
    eyes: np.ndarray | None = None
    keypoints: np.ndarray | None = None


@runtime_checkable
class Detector(Protocol):
    """Finds face boxes in an RGB uint8 image."""

    def detect(self, rgb: np.ndarray) -> list[Detection]: ...


@runtime_checkable
class Landmarker(Protocol):
    """Places the 68 iBUG landmarks (68x2, source pixels) of one detected face."""

    def landmarks(self, rgb: np.ndarray, detection: Detection) -> np.ndarray: ...


@runtime_checkable
class Embedder(Protocol):
    """Turns a face (given by its 68 landmarks) into an L2-normalised identity vector."""

    embedding_size: int

    def embed(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class FaceAnalyzer(Protocol):
    """A whole backend: every face in an image with landmarks and embedding."""

    name: str
    embedding_size: int

    def analyze(self, rgb: np.ndarray) -> list[AnalyzedFace]: ...


def largest_face(faces: list[AnalyzedFace]) -> AnalyzedFace:
    """The face with the largest detector box."""
    return max(faces, key=lambda f: f.bbox[2] * f.bbox[3])


def l2_normalise(vector: np.ndarray) -> np.ndarray:
    """Unit-length float32 copy of a vector."""
    vec = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


SAME_FACE_IOU = 0.3  # landmark boxes overlapping more than this are one face found twice (bench/identity_truth.py)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (x0, y0, x1, y1) box with each row of ``boxes``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum((box[2] - box[0]) * (box[3] - box[1]) + area - inter, 1e-9)


def distinct_faces(landmarks: list[np.ndarray], ok: list[bool], scores: list[float],
                   iou: float = SAME_FACE_IOU) -> list[int]:
    """Indices of the faces to keep when two detections landed on one face (the detector boxes differ enough
    to pass non-maximum suppression, the landmarks then agree): of overlapping ones the landmarked, then the
    higher-scoring, face stays."""
    boxes = [np.r_[np.min(p, axis=0), np.max(p, axis=0)] for p in landmarks]
    kept: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda k: (not ok[k], -scores[k])):
        if not kept or box_iou(boxes[i], np.stack([boxes[j] for j in kept])).max() <= iou:
            kept.append(i)
    return sorted(kept)


@dataclass
class StagedAnalyzer:
    """A backend made of three interchangeable stages."""

    name: str
    detector: Detector
    landmarker: Landmarker
    embedder: Embedder

    @property
    def embedding_size(self) -> int:
        """Length of the identity vectors."""
        return self.embedder.embedding_size

    def locate(self, rgb: np.ndarray, detection: Detection) -> LandmarkResult:
        """The landmarker's full result for one detection (68 points only, for landmarkers without more)."""
        locate = getattr(self.landmarker, "locate", None)
        if locate is not None:
            return locate(rgb, detection)
        return LandmarkResult(np.asarray(self.landmarker.landmarks(rgb, detection), dtype=np.float64))

    def _symmetric_fallbacks(self, images: list[np.ndarray], located: list[tuple[list, list]]) -> list[tuple[list, list]]:
        """Faces the landmarker could not place keep only the detector's keypoints for their pose; where the
        detector can (``symmetric``), those keypoints are averaged with the mirrored image's, so a mirrored
        photo gives exactly the opposite yaw and roll (bench/pose_fit.py: keypoint MAE lower too)."""
        symmetric = getattr(self.detector, "symmetric", None)
        fallback = getattr(self.landmarker, "fallback", None)
        todo = [(i, k) for i, (dets, results) in enumerate(located) for k, r in enumerate(results)
                if not r.ok and dets[k].keypoints]
        if symmetric is None or fallback is None or not todo:
            return located
        by_image: dict[int, list[int]] = {}
        for i, k in todo:
            by_image.setdefault(i, []).append(k)
        better = symmetric([(images[i], [located[i][0][k] for k in ks]) for i, ks in by_image.items()])
        out = [(list(dets), list(results)) for dets, results in located]
        for (i, ks), dets in zip(by_image.items(), better):
            for k, det in zip(ks, dets):
                out[i][0][k] = det
                out[i][1][k] = LandmarkResult(np.asarray(fallback(det), dtype=np.float64), ok=False)
        return out

    def analyze(self, rgb: np.ndarray) -> list[AnalyzedFace]:
        """Run detect -> landmarks -> embedding on one RGB image, faces sorted left to right."""
        return self.analyze_many([rgb])[0]

    def analyze_many(self, images: list[np.ndarray]) -> list[list[AnalyzedFace]]:
        """``analyze`` for several images, each stage batched over all of them where the stage can
        (``detect_many``, ``locate_many``, ``embed_frames``: on a GPU one call instead of one per frame/face)."""
        detect_many = getattr(self.detector, "detect_many", None)
        found = detect_many(images) if detect_many is not None else [self.detector.detect(rgb) for rgb in images]
        found = [sorted(dets, key=lambda d: (d.bbox[0], d.bbox[1])) for dets in found]
        locate_many = getattr(self.landmarker, "locate_many", None)
        if locate_many is not None:  # every face of every image at once: one network batch per step
            results = iter(locate_many([(rgb, det) for rgb, dets in zip(images, found) for det in dets]))
            located = [(dets, [next(results) for _ in dets]) for dets in found]
        else:
            located = [(dets, [self.locate(rgb, det) for det in dets]) for rgb, dets in zip(images, found)]
        located = [_distinct(dets, results) for dets, results in located]
        located = self._symmetric_fallbacks(images, located)
        marks = [(rgb, [f.landmarks for f in found]) for rgb, (_, found) in zip(images, located)]
        embed_frames = getattr(self.embedder, "embed_frames", None)
        embed_many = getattr(self.embedder, "embed_many", None)
        if embed_frames is not None:
            vectors = embed_frames(marks)
        elif embed_many is not None:
            vectors = [embed_many(rgb, pts) for rgb, pts in marks]
        else:
            vectors = [[self.embedder.embed(rgb, p) for p in pts] for rgb, pts in marks]
        return [
            [
                AnalyzedFace(
                    det.bbox, det.score, f.landmarks, vec, landmarks_ok=f.ok, mesh=f.mesh, eyes=f.eyes,
                    keypoints=np.asarray(det.keypoints, dtype=np.float64) if det.keypoints else None,
                )
                for det, f, vec in zip(dets, found, vecs)
            ]
            for (dets, found), vecs in zip(located, vectors)
        ]


def _distinct(dets: list[Detection], results: list[LandmarkResult]) -> tuple[list[Detection], list[LandmarkResult]]:
    keep = distinct_faces([r.landmarks for r in results], [r.ok for r in results], [d.score for d in dets])
    return [dets[k] for k in keep], [results[k] for k in keep]
