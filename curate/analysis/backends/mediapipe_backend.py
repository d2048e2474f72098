"""mediapipe backend (the default): MediaPipe's face models run by OpenCV DNN, dlib's 128-d identity embedding.

- detect: BlazeFace full-range (192 px input, 2304 anchors, 6 keypoints), weighted NMS as MediaPipe does;
  large images are also searched in overlapping tiles so small faces in group photos are found.
- landmarks: FaceMesh (468 3D points) on a square crop turned upright by the eye keypoints, retried at other
  scales/rotations when the mesh's face flag says no face, refined once on the crop the mesh itself implies;
  the iris model's eye contours for eye openness. 68 iBUG points come from the mesh
  (:data:`curate.analysis.mesh.MESH_TO_68`). A face whose mesh fails is kept: its 68 points are the mean face
  posed by the keypoints and ``ok`` is False.
- embedding: dlib's ResNet fed with the mesh's 68 points (as the dlib backend does with its own).

The ``.tflite`` files (Apache-2.0, from MediaPipe) ship in ``curate/data/mediapipe``; nothing is downloaded.
The mediapipe, tensorflow and tflite-runtime packages are not needed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import as_file, files
from typing import Any

import cv2
import numpy as np

from curate.analysis.align import transform_points, umeyama
from curate.analysis.backends.base import Detection, LandmarkResult, ModelsMissingError, StagedAnalyzer
from curate.analysis.landmarks import mean_face_3d
from curate.analysis.mesh import (
    LEFT_EYE_CORNERS,
    RIGHT_EYE_CORNERS,
    Roi,
    crop_roi,
    crop_to_image,
    mesh_to_68,
    mirror_mesh,
    roi_from_points,
)
from curate.analysis.pose import pose_from_keypoints, rotation_from_pose

MODELS = {"detector": "face_detection_full_range.tflite", "mesh": "face_landmark.tflite", "iris": "iris_landmark.tflite",
          "palm": "palm_detection_full.tflite", "hand": "hand_landmark_full.tflite"}
DET_SIZE, MESH_SIZE, IRIS_SIZE = 192, 192, 64


def _model_path(key: str) -> str:
    ref = files("curate") / "data" / "mediapipe" / MODELS[key]
    with as_file(ref) as path:
        if not path.is_file():
            raise ModelsMissingError(
                f"MediaPipe model {MODELS[key]} is missing from {path.parent} (it ships with faceset: reinstall it)"
            )
        return str(path)


def model_net(key: str) -> Any:
    """One of the shipped MediaPipe models loaded by OpenCV DNN, with its output names."""
    return _net(key)


def _net(key: str) -> Any:
    net = cv2.dnn.readNetFromTFLite(_model_path(key))
    return net, net.getUnconnectedOutLayersNames()


def _run(net_names: tuple[Any, tuple[str, ...]], batch: np.ndarray) -> list[np.ndarray]:
    """Forward NHWC float images through an OpenCV DNN TFLite net (it wants NCHW)."""
    net, names = net_names
    net.setInput(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
    return [np.asarray(o) for o in net.forward(names)]


def letterbox(rgb: np.ndarray, size: int, low: float, high: float) -> tuple[np.ndarray, float, int, int]:
    """An image fitted into a ``size`` square, centred as MediaPipe does, pixels mapped to ``low..high`` and
    0 outside: (float32 canvas, scale, x pad, y pad)."""
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas = np.zeros((size, size, 3), np.float32)
    canvas[py:py + nh, px:px + nw] = small.astype(np.float32) * ((high - low) / 255.0) + low
    return canvas, scale, px, py


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -100.0, 100.0)))


@lru_cache(maxsize=1)
def _anchors() -> np.ndarray:
    grid = (np.arange(DET_SIZE // 4) + 0.5) / (DET_SIZE // 4)
    ys, xs = np.meshgrid(grid, grid, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)  # 2304 x (x, y), fixed anchor size 1


def decode_ssd(scores: np.ndarray, raw: np.ndarray, anchors: np.ndarray, input_size: int, keypoints: int,
               min_score: float) -> np.ndarray:
    """MediaPipe SSD outputs (fixed-size anchors) -> rows (score, x0, y0, x1, y1, keypoints x/y) in 0..1."""
    score = _sigmoid(scores.reshape(-1))
    keep = score >= min_score
    width = 5 + 2 * keypoints
    if not np.any(keep):
        return np.zeros((0, width))
    reg, anc = raw.reshape(-1, width - 1)[keep] / input_size, anchors[keep]
    cx, cy = reg[:, 0] + anc[:, 0], reg[:, 1] + anc[:, 1]
    w, h = reg[:, 2], reg[:, 3]
    kps = reg[:, 4:].reshape(-1, keypoints, 2) + anc[:, None, :]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return np.hstack([score[keep, None], boxes, kps.reshape(-1, 2 * keypoints)])


def decode_detections(scores: np.ndarray, raw: np.ndarray, min_score: float) -> np.ndarray:
    """BlazeFace outputs -> rows (score, x0, y0, x1, y1, 6 keypoints x/y) in the 0..1 input square."""
    return decode_ssd(scores, raw, _anchors(), DET_SIZE, 6, min_score)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def weighted_nms(rows: np.ndarray, iou: float = 0.3) -> np.ndarray:
    """MediaPipe's weighted non-maximum suppression: overlapping hits averaged by score, top score kept."""
    width = rows.shape[1]
    rows = rows[np.argsort(-rows[:, 0])]
    out = []
    while len(rows):
        overlap = _iou(rows[0, 1:5], rows[:, 1:5]) > iou
        group = rows[overlap]
        merged = group[0].copy()
        merged[1:] = (group[:, 1:] * group[:, :1]).sum(axis=0) / group[:, 0].sum()
        out.append(merged)
        rows = rows[~overlap]
    return np.array(out).reshape(-1, width)


def tile_grid(width: int, height: int, min_tile: int) -> list[tuple[int, int, int]]:
    """Square tiles (x, y, side) that search a large image for small faces: halves, quarters, ... while a
    tile is at least ``min_tile`` px, each level overlapping by a quarter of a tile. Empty for small images."""
    tiles: list[tuple[int, int, int]] = []
    if min_tile <= 0:
        return tiles
    side = max(width, height) // 2
    while side >= min_tile:
        step = max(1, int(side * 0.75))
        xs = sorted({min(x, max(0, width - side)) for x in range(0, max(1, width - side + step), step)})
        ys = sorted({min(y, max(0, height - side)) for y in range(0, max(1, height - side + step), step)})
        tiles += [(x, y, side) for y in ys for x in xs]
        side //= 2
    return tiles


@dataclass
class BlazeFaceDetector:
    """BlazeFace full-range through OpenCV DNN, with tiles for small faces in large images."""

    min_score: float = 0.5
    min_tile: int = 384  # tiles no smaller than this (px); 0: whole image only
    _net: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._net = _net("detector")

    def _search(self, rgb: np.ndarray, x0: int, y0: int, side_w: int, side_h: int, tile: bool) -> np.ndarray:
        """Detections (source px rows) in one region, letterboxed into the 192 px input as MediaPipe does."""
        region = rgb[y0:y0 + side_h, x0:x0 + side_w]
        h, w = region.shape[:2]
        canvas, scale, px, py = letterbox(region, DET_SIZE, -1.0, 1.0)
        scores, raw = _run(self._net, canvas[None])
        rows = decode_detections(scores, raw, self.min_score)
        if not len(rows):
            return rows
        xy = rows[:, 1:].reshape(-1, 8, 2) * DET_SIZE - np.array([px, py])
        xy = xy / scale + np.array([x0, y0])
        rows = np.hstack([rows[:, :1], xy.reshape(-1, 16)])
        if tile:  # a face cut by an inner tile edge is found whole by the neighbouring tile or the full image
            H, W = rgb.shape[:2]
            margin = 0.02 * max(h, w)
            cut = ((rows[:, 1] < x0 + margin) & (x0 > 0)) | ((rows[:, 2] < y0 + margin) & (y0 > 0)) \
                | ((rows[:, 3] > x0 + w - margin) & (x0 + w < W)) | ((rows[:, 4] > y0 + h - margin) & (y0 + h < H))
            rows = rows[~cut]
        return rows

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Face boxes with BlazeFace's score and 6 keypoints, in source pixels."""
        h, w = rgb.shape[:2]
        found = [self._search(rgb, 0, 0, w, h, False)]
        found += [self._search(rgb, x, y, s, s, True) for x, y, s in tile_grid(w, h, self.min_tile)]
        rows = weighted_nms(np.vstack(found))
        out = []
        for r in rows:
            x0, y0, x1, y1 = (float(v) for v in r[1:5])
            kps = tuple((float(r[5 + 2 * k]), float(r[6 + 2 * k])) for k in range(6))
            out.append(Detection((x0, y0, x1 - x0, y1 - y0), float(r[0]), kps))
        return out


def keypoint_landmarks(keypoints: np.ndarray) -> np.ndarray:
    """68 landmarks for a face the mesh could not place: the mean face posed and fitted to the 6 keypoints."""
    mean = mean_face_3d() * np.array([1.0, 1.0, -1.0])  # z toward viewer -> into the scene
    rotated = mean @ rotation_from_pose(pose_from_keypoints(keypoints)).T
    # fitted on the inner keypoints (eye centres, nose tip, mouth centre); the tragions are the noisiest
    own = np.stack([rotated[36:42].mean(0), rotated[42:48].mean(0), rotated[30], rotated[[62, 66]].mean(0)])[:, :2]
    kps = np.asarray(keypoints, dtype=np.float64)[:4, :2]
    return transform_points(rotated[:, :2], umeyama(own, kps))


@dataclass
class FaceMeshLandmarker:
    """FaceMesh 468 points (+ iris eye contours) on an upright crop; 68 iBUG points derived from the mesh."""

    min_presence: float = 0.5
    scales: tuple[float, ...] = (1.5, 1.9, 1.25)
    iris: bool = True
    _mesh: Any = field(default=None, repr=False)
    _iris: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._mesh = _net("mesh")
        self._iris = _net("iris") if self.iris else None

    def _mesh_in(self, rgb: np.ndarray, roi: Roi, mirrored: bool = False) -> tuple[float, np.ndarray]:
        """Face-presence score and mesh (source px) in one ROI; ``mirrored`` also meshes the mirrored crop and
        averages the two, so a mirrored face gets exactly the mirrored mesh (FaceMesh alone is not symmetric)."""
        crop, matrix = crop_roi(rgb, roi, MESH_SIZE)
        batch = crop.astype(np.float32)[None] / 255.0
        if mirrored:
            batch = np.concatenate([batch, batch[:, :, ::-1]])
        outs = _run(self._mesh, batch)
        presence = next(o for o in outs if o.size == len(batch)).reshape(-1)
        points = next(o for o in outs if o.size == len(batch) * 1404).reshape(len(batch), 468, 3)
        mesh, score = points[0], float(_sigmoid(presence[:1])[0])
        if mirrored:
            mesh = (mesh + mirror_mesh(points[1], MESH_SIZE)) / 2.0
            score = float(_sigmoid(presence).mean())
        return score, crop_to_image(mesh, matrix)

    def mesh(self, rgb: np.ndarray, detection: Detection) -> tuple[np.ndarray | None, float]:
        """The 468-point mesh (source px) of a detected face, or None, and the mesh's face-presence score."""
        x, y, w, h = detection.bbox
        cx, cy = x + w / 2.0, y + h / 2.0
        angles = [0.0]
        if len(detection.keypoints) >= 2:
            (ax, ay), (bx, by) = detection.keypoints[:2]
            angles = [float(np.arctan2(by - ay, bx - ax)), 0.0]
        best: tuple[float, np.ndarray | None] = (0.0, None)
        for angle in angles:
            for scale in self.scales:
                score, mesh = self._mesh_in(rgb, Roi(cx, cy, max(w, h) * scale, angle))
                if score > best[0]:
                    best = (score, mesh)
                if score >= self.min_presence:
                    break
            if best[0] >= self.min_presence:
                break
        score, mesh = best
        if mesh is None or score < self.min_presence:
            return None, score
        # refine on the crop the mesh implies (what MediaPipe's tracking feeds the next frame)
        roi = roi_from_points(mesh[RIGHT_EYE_CORNERS[0]], mesh[LEFT_EYE_CORNERS[1]], mesh, 1.5)
        again, refined = self._mesh_in(rgb, roi, mirrored=True)
        return (refined, again) if again >= self.min_presence else (mesh, score)

    def eyes(self, rgb: np.ndarray, mesh: np.ndarray) -> np.ndarray:
        """Eye contours (2 x 71 x 3, source px) of the iris model: subject's right eye, then left."""
        out = []
        for (a, b), flip in ((RIGHT_EYE_CORNERS, False), (LEFT_EYE_CORNERS, True)):
            roi = roi_from_points(mesh[a], mesh[b], mesh[[a, b]], 2.3)
            crop, matrix = crop_roi(rgb, roi, IRIS_SIZE, cv2.BORDER_REPLICATE)
            if flip:  # the model sees every eye as a right eye
                crop = crop[:, ::-1]
            outs = _run(self._iris, (crop.astype(np.float32) / 255.0)[None])
            contour = next(o for o in outs if o.size == 213).reshape(71, 3).astype(np.float64)
            if flip:
                contour[:, 0] = (IRIS_SIZE - 1) - contour[:, 0]
            out.append(crop_to_image(contour, matrix))
        return np.stack(out)

    def locate(self, rgb: np.ndarray, detection: Detection) -> LandmarkResult:
        """68 points from the mesh, the mesh and eye contours; keypoint-posed mean face when the mesh fails."""
        mesh, _ = self.mesh(rgb, detection)
        if mesh is None:
            return LandmarkResult(self._fallback(detection), ok=False)
        eyes = self.eyes(rgb, mesh) if self._iris is not None else None
        return LandmarkResult(mesh_to_68(mesh), ok=True, mesh=mesh, eyes=eyes)

    def landmarks(self, rgb: np.ndarray, detection: Detection) -> np.ndarray:
        """68x2 landmarks in source pixels (from the mesh, or the keypoint fallback)."""
        mesh, _ = self.mesh(rgb, detection)
        return mesh_to_68(mesh) if mesh is not None else self._fallback(detection)

    @staticmethod
    def _fallback(detection: Detection) -> np.ndarray:
        if len(detection.keypoints) == 6:
            return keypoint_landmarks(np.asarray(detection.keypoints))
        # no keypoints (a followed box): the frontal mean face filling the box
        pts = mean_face_3d()[:, :2]
        lo, hi = pts.min(0), pts.max(0)
        x, y, w, h = detection.bbox
        return (pts - lo) / (hi - lo) * np.array([w, h]) + np.array([x, y])


def check(**_: Any) -> None:
    """Fail early with ModelsMissingError when a model file or dlib's embedding weights are missing."""
    from curate.analysis.backends import dlib_backend

    for key in MODELS:
        _model_path(key)
    dlib_backend.check()


def create(min_score: float = 0.5, min_tile: int = 384, iris: bool = True, **_: Any) -> StagedAnalyzer:
    """The mediapipe backend: BlazeFace full-range + FaceMesh/iris + dlib's 128-d embedding."""
    from curate.analysis.backends.dlib_backend import DlibEmbedder

    check()
    return StagedAnalyzer(
        "mediapipe", BlazeFaceDetector(min_score, min_tile), FaceMeshLandmarker(iris=iris), DlibEmbedder()
    )
