"""FaceMesh (468 3D points) on a square crop turned upright by the eye keypoints, retried at other
scales/rotations when the mesh's face flag says no face, refined once on the crop the mesh itself implies; the
iris model's eye contours for eye openness. 68 iBUG points come from the mesh
(:data:`curate.core.mesh.MESH_TO_68`). A face whose mesh fails is kept: its 68 points are the mean face posed by
the keypoints and ``ok`` is False."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from curate.analysis.protocols import Detection, LandmarkResult
from curate.analysis.runtime.runners import model_net, run_chunks
from curate.analysis.runtime.ssd import sigmoid
from curate.core.align import transform_points, umeyama
from curate.core.landmarks import eye_centres, mean_face_3d
from curate.core.mesh import (
    LEFT_EYE_CORNERS,
    RIGHT_EYE_CORNERS,
    Roi,
    crop_roi,
    crop_to_image,
    mesh_to_68,
    mirror_mesh,
    roi_from_points,
)
from curate.core.pose import pose_from_keypoints, rotation_from_pose

MESH_SIZE, IRIS_SIZE = 192, 64


def keypoint_landmarks(keypoints: np.ndarray, bbox: tuple[float, float, float, float]) -> np.ndarray:
    """68 landmarks for a face the mesh could not place: the mean face posed and fitted to the 6 keypoints
    (posed by the keypoints and the detector box)."""
    mean = mean_face_3d() * np.array([1.0, 1.0, -1.0])  # z toward viewer -> into the scene
    rotated = mean @ rotation_from_pose(pose_from_keypoints(keypoints, bbox)).T
    # fitted on the inner keypoints (eye centres, nose tip, mouth centre); the tragions are the noisiest
    own = np.vstack([eye_centres(rotated), rotated[30], rotated[[62, 66]].mean(0)])[:, :2]
    kps = np.asarray(keypoints, dtype=np.float64)[:4, :2]
    return transform_points(rotated[:, :2], umeyama(own, kps))


MeshItem = tuple[np.ndarray, Roi, bool]  # (image, crop region, also mesh the mirrored crop)


@dataclass
class FaceMeshLandmarker:
    """FaceMesh 468 points (+ iris eye contours) on an upright crop; 68 iBUG points derived from the mesh.
    ``locate_many`` meshes the faces of many images in one batch per step (first try, refinement, eyes)."""

    min_presence: float = 0.5
    scales: tuple[float, ...] = (1.5, 1.9, 1.25)
    iris: bool = True
    engine: str = "auto"
    _mesh: Any = field(default=None, repr=False)
    _iris: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._mesh = model_net("mesh", self.engine)
        self._iris = model_net("iris", self.engine) if self.iris else None

    def _meshes(self, items: list[MeshItem]) -> list[tuple[float, np.ndarray]]:
        """Face-presence score and mesh (source px) in each (image, ROI, mirrored), all in one batch; mirrored
        also meshes the mirrored crop and averages the two, so a mirrored face gets exactly the mirrored mesh
        (FaceMesh alone is not symmetric)."""
        crops, matrices = [], []
        for rgb, roi, mirrored in items:
            crop, matrix = crop_roi(rgb, roi, MESH_SIZE)
            crops += [crop, crop[:, ::-1]] if mirrored else [crop]
            matrices.append(matrix)
        if not crops:
            return []
        outs = run_chunks(self._mesh, np.stack(crops).astype(np.float32) / 255.0)
        presence = sigmoid(outs["conv2d_30"].reshape(-1))
        points = outs["conv2d_20"].reshape(-1, 468, 3)
        out, j = [], 0
        for (_, _, mirrored), matrix in zip(items, matrices):
            if mirrored:
                mesh, score = (points[j] + mirror_mesh(points[j + 1], MESH_SIZE)) / 2.0, float(presence[j:j + 2].mean())
            else:
                mesh, score = points[j], float(presence[j])
            j += 2 if mirrored else 1
            out.append((score, crop_to_image(mesh, matrix)))
        return out

    def _rois(self, detection: Detection) -> list[Roi]:
        """The crops tried for a detection, in order: turned by the eye keypoints, then unturned, each at
        ``scales``."""
        x, y, w, h = detection.bbox
        cx, cy = x + w / 2.0, y + h / 2.0
        angles = [0.0]
        if len(detection.keypoints) >= 2:
            (ax, ay), (bx, by) = detection.keypoints[:2]
            angles = [float(np.arctan2(by - ay, bx - ax)), 0.0]
        return [Roi(cx, cy, max(w, h) * scale, angle) for angle in angles for scale in self.scales]

    def _search(self, rgb: np.ndarray, rois: list[Roi]) -> tuple[float, np.ndarray | None]:
        """Crops tried one by one until the mesh's face flag says yes; the best one found."""
        best: tuple[float, np.ndarray | None] = (0.0, None)
        for roi in rois:
            score, mesh = self._meshes([(rgb, roi, False)])[0]
            if score > best[0]:
                best = (score, mesh)
            if score >= self.min_presence:
                break
        return best

    def mesh_many(self, items: list[tuple[np.ndarray, Detection]]) -> list[tuple[np.ndarray | None, float]]:
        """The 468-point mesh (source px) of each (image, detection), or None, and its face-presence score: the
        first crops of all faces in one batch (a face the first crop misses is retried crop by crop), then every
        found face refined on the crop its mesh implies (what MediaPipe's tracking feeds the next frame)."""
        rois = [self._rois(det) for _, det in items]
        first = self._meshes([(rgb, r[0], False) for (rgb, _), r in zip(items, rois)])
        found = []
        for (rgb, _), r, hit in zip(items, rois, first):
            if hit[0] < self.min_presence:
                again = self._search(rgb, r[1:])
                hit = again if again[0] > hit[0] else hit
            found.append(hit)
        ok = [k for k, (score, mesh) in enumerate(found) if mesh is not None and score >= self.min_presence]
        refine = [(items[k][0], roi_from_points(found[k][1][RIGHT_EYE_CORNERS[0]], found[k][1][LEFT_EYE_CORNERS[1]],
                                                found[k][1], 1.5), True) for k in ok]
        out: list[tuple[np.ndarray | None, float]] = [(None, score) for score, _ in found]
        for k, (again, refined) in zip(ok, self._meshes(refine)):
            out[k] = (refined, again) if again >= self.min_presence else (found[k][1], found[k][0])
        return out

    def mesh(self, rgb: np.ndarray, detection: Detection) -> tuple[np.ndarray | None, float]:
        """The 468-point mesh (source px) of a detected face, or None, and the mesh's face-presence score."""
        return self.mesh_many([(rgb, detection)])[0]

    def eyes_many(self, items: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Eye contours (2 x 71 x 3, source px) of the iris model for each (image, mesh): subject's right eye,
        then left; all eyes in one batch."""
        crops, matrices = [], []
        for rgb, mesh in items:
            for (a, b), flip in ((RIGHT_EYE_CORNERS, False), (LEFT_EYE_CORNERS, True)):
                crop, matrix = crop_roi(rgb, roi_from_points(mesh[a], mesh[b], mesh[[a, b]], 2.3), IRIS_SIZE,
                                        cv2.BORDER_REPLICATE)
                crops.append(crop[:, ::-1] if flip else crop)  # the model sees every eye as a right eye
                matrices.append((matrix, flip))
        if not crops:
            return []
        contours = run_chunks(self._iris, np.stack(crops).astype(np.float32) / 255.0)["output_eyes_contours_and_brows"]
        out = []
        for contour, (matrix, flip) in zip(contours.reshape(-1, 71, 3).astype(np.float64), matrices):
            if flip:
                contour[:, 0] = (IRIS_SIZE - 1) - contour[:, 0]
            out.append(crop_to_image(contour, matrix))
        return [np.stack(out[k:k + 2]) for k in range(0, len(out), 2)]

    def eyes(self, rgb: np.ndarray, mesh: np.ndarray) -> np.ndarray:
        """Eye contours (2 x 71 x 3, source px) of one face's mesh."""
        return self.eyes_many([(rgb, mesh)])[0]

    def locate_many(self, items: list[tuple[np.ndarray, Detection]]) -> list[LandmarkResult]:
        """``locate`` for many (image, detection) pairs, batched per step."""
        meshes = [mesh for mesh, _ in self.mesh_many(items)]
        ok = [k for k, mesh in enumerate(meshes) if mesh is not None]
        eyes = dict(zip(ok, self.eyes_many([(items[k][0], meshes[k]) for k in ok]))) if self._iris is not None else {}
        return [LandmarkResult(mesh_to_68(mesh), ok=True, mesh=mesh, eyes=eyes.get(k)) if mesh is not None
                else LandmarkResult(self.fallback(det), ok=False) for k, ((_, det), mesh) in enumerate(zip(items, meshes))]

    def locate(self, rgb: np.ndarray, detection: Detection) -> LandmarkResult:
        """68 points from the mesh, the mesh and eye contours; keypoint-posed mean face when the mesh fails."""
        return self.locate_many([(rgb, detection)])[0]

    def landmarks(self, rgb: np.ndarray, detection: Detection) -> np.ndarray:
        """68x2 landmarks in source pixels (from the mesh, or the keypoint fallback)."""
        mesh, _ = self.mesh(rgb, detection)
        return mesh_to_68(mesh) if mesh is not None else self.fallback(detection)

    @staticmethod
    def fallback(detection: Detection) -> np.ndarray:
        """68 points of a face the mesh could not place: posed from the detector's keypoints and box."""
        if len(detection.keypoints) == 6:
            return keypoint_landmarks(np.asarray(detection.keypoints), detection.bbox)
        # no keypoints (a followed box): the frontal mean face filling the box
        pts = mean_face_3d()[:, :2]
        lo, hi = pts.min(0), pts.max(0)
        x, y, w, h = detection.bbox
        return (pts - lo) / (hi - lo) * np.array([w, h]) + np.array([x, y])
