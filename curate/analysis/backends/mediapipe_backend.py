"""mediapipe backend (the default): MediaPipe's face models, dlib's 128-d identity embedding.

Runners: OpenCV DNN on the CPU, or torch (:mod:`curate.analysis.tflite_torch`: the same graph and weights) on a
GPU when there is one — there the regions of many frames and the faces of many frames go through each model in
one batch (``detect_many``, ``locate_many``).

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
from curate.analysis.backends.base import Detection, LandmarkResult, ModelsMissingError, StagedAnalyzer, box_iou
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


ENGINES = ("auto", "opencv", "torch")


def _torch_device() -> str | None:
    """'cuda' when torch sees a GPU, else None (the models then run on OpenCV DNN)."""
    from curate.analysis.device import on_gpu

    return "cuda" if on_gpu() else None


class OpenCVRunner:
    """A model run by OpenCV DNN on the CPU (outputs by name, batch first)."""

    def __init__(self, path: str):
        self.net = cv2.dnn.readNetFromTFLite(path)
        self.names = tuple(self.net.getUnconnectedOutLayersNames())
        self.device = "cpu (OpenCV DNN)"

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """NHWC float batch -> {output name: array with the batch first}."""
        self.net.setInput(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
        out = {}
        for name, value in zip(self.names, self.net.forward(self.names)):
            value = np.asarray(value)  # OpenCV folds the batch into a reshaped output (batch-major): unfold it
            out[name] = value if value.shape[0] == len(batch) else value.reshape(len(batch), -1, *value.shape[2:])
        return out


class TorchRunner:
    """A model run by torch (:mod:`curate.analysis.tflite_torch`) on ``device``: any batch in one call."""

    def __init__(self, path: str, device: str):
        from curate.analysis.tflite_torch import TFLiteModule

        self.module = TFLiteModule(path).to(device).eval()
        self.names = tuple(self.module.output_names)
        self.device = device

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """NHWC float batch -> {output name: array with the batch first}."""
        return dict(zip(self.names, self.module.run(batch)))


def model_net(key: str, engine: str = "auto") -> OpenCVRunner | TorchRunner:
    """One of the shipped MediaPipe models with a runner: ``opencv`` (CPU), ``torch`` (its GPU when there is
    one, else CPU) or ``auto`` — torch on a GPU, else OpenCV, except the hand landmarker, which OpenCV's DNN
    computes wrongly (its points several px off TFLite's own interpreter) and torch gets right on the CPU too."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    device = _torch_device()
    if engine == "torch" or (engine == "auto" and (device is not None or key == "hand")):
        return TorchRunner(_model_path(key), device or "cpu")
    return OpenCVRunner(_model_path(key))


def _run(runner: OpenCVRunner | TorchRunner, batch: np.ndarray, chunk: int = 64) -> dict[str, np.ndarray]:
    """A runner over a batch of any length, ``chunk`` images a call."""
    parts = [runner(batch[k:k + chunk]) for k in range(0, len(batch), chunk)]
    return {n: np.concatenate([p[n] for p in parts]) for n in runner.names} if parts else {}


def letterbox(rgb: np.ndarray, size: int, low: float, high: float, zoom: float = 1.0, fill: float = 0.0
              ) -> tuple[np.ndarray, float, int, int]:
    """An image fitted into a ``size`` square (``zoom`` < 1: into that share of it, a border around), centred
    as MediaPipe does, pixels mapped to ``low..high`` and ``fill`` outside: (float32 canvas, scale, x pad, y pad)."""
    h, w = rgb.shape[:2]
    scale = zoom * size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas = np.full((size, size, 3), fill, np.float32)
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


def weighted_nms(rows: np.ndarray, iou: float = 0.3) -> np.ndarray:
    """MediaPipe's weighted non-maximum suppression: overlapping hits averaged by score, top score kept."""
    width = rows.shape[1]
    rows = rows[np.argsort(-rows[:, 0])]
    out = []
    while len(rows):
        overlap = box_iou(rows[0, 1:5], rows[:, 1:5]) > iou
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


RETRY_ZOOM = 0.5  # share of the detector's input the image fills when it is looked at again


@dataclass
class BlazeFaceDetector:
    """BlazeFace full-range, with tiles for small faces in large images; the regions of many images go through
    the network in one batch (``detect_many``), which is what a GPU wants."""

    min_score: float = 0.5
    min_tile: int = 384  # tiles no smaller than this (px); 0: whole image only
    engine: str = "auto"
    _net: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._net = model_net("detector", self.engine)

    @staticmethod
    def _regions(rgb: np.ndarray, min_tile: int) -> list[tuple[int, int, int, int, bool]]:
        h, w = rgb.shape[:2]
        return [(0, 0, w, h, False)] + [(x, y, s, s, True) for x, y, s in tile_grid(w, h, min_tile)]

    def _decode(self, rgb: np.ndarray, region: tuple[int, int, int, int, bool], scores: np.ndarray, raw: np.ndarray,
                fit: tuple[float, int, int]) -> np.ndarray:
        """One region's network outputs -> detections (source px rows); a face cut by an inner tile edge is
        dropped (the neighbouring tile or the full image finds it whole)."""
        x0, y0, side_w, side_h, tile = region
        h, w = rgb[y0:y0 + side_h, x0:x0 + side_w].shape[:2]
        scale, px, py = fit
        rows = decode_detections(scores, raw, self.min_score)
        if not len(rows):
            return rows
        xy = rows[:, 1:].reshape(-1, 8, 2) * DET_SIZE - np.array([px, py])
        xy = xy / scale + np.array([x0, y0])
        rows = np.hstack([rows[:, :1], xy.reshape(-1, 16)])
        if tile:
            H, W = rgb.shape[:2]
            margin = 0.02 * max(h, w)
            cut = ((rows[:, 1] < x0 + margin) & (x0 > 0)) | ((rows[:, 2] < y0 + margin) & (y0 > 0)) \
                | ((rows[:, 3] > x0 + w - margin) & (x0 + w < W)) | ((rows[:, 4] > y0 + h - margin) & (y0 + h < H))
            rows = rows[~cut]
        return rows

    def detect_many(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """``detect`` for several images: every region (whole image + tiles) of all of them in one batch."""
        jobs, canvases = [], []
        for k, rgb in enumerate(images):
            for region in self._regions(rgb, self.min_tile):
                x0, y0, side_w, side_h, _ = region
                canvas, scale, px, py = letterbox(rgb[y0:y0 + side_h, x0:x0 + side_w], DET_SIZE, -1.0, 1.0)
                jobs.append((k, region, (scale, px, py)))
                canvases.append(canvas)
        if not canvases:
            return []
        found = self._found(images, jobs, canvases)
        # a face filling the frame is too large for the detector's anchors: an image where nothing was found is
        # looked at again zoomed out (AFLW2000: 46 of its 57 missed faces found so, bench/pose_fit.py)
        retry = []
        for k, rgb in enumerate(images):
            if not any(len(rows) for rows in found.get(k, [])):
                canvas, scale, px, py = letterbox(rgb, DET_SIZE, -1.0, 1.0, zoom=RETRY_ZOOM, fill=-1.0)
                retry.append(((k, (0, 0, rgb.shape[1], rgb.shape[0], False), (scale, px, py)), canvas))
        if retry:
            found.update(self._found(images, [job for job, _ in retry], [canvas for _, canvas in retry]))
        return [_detections(weighted_nms(np.vstack(found[k]))) for k in range(len(images))]

    def _found(self, images: list[np.ndarray], jobs: list[tuple], canvases: list[np.ndarray]
               ) -> dict[int, list[np.ndarray]]:
        """Decoded detections (one array per region) of the images one network batch of regions covers."""
        outs = _run(self._net, np.stack(canvases))
        scores, raw = outs["reshaped_classifier_face_4"], outs["reshaped_regressor_face_4"]
        found: dict[int, list[np.ndarray]] = {}
        for j, (k, region, fit) in enumerate(jobs):
            found.setdefault(k, []).append(self._decode(images[k], region, scores[j], raw[j], fit))
        return found

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Face boxes with BlazeFace's score and 6 keypoints, in source pixels."""
        return self.detect_many([rgb])[0]

    def symmetric(self, items: list[tuple[np.ndarray, list[Detection]]]) -> list[list[Detection]]:
        """Detections of each image with their keypoints and box averaged with the same face's detection in the
        mirrored image (mirrored back): the pose read from them is then exactly opposite for a mirrored image.
        A face the mirrored image does not show again (IoU < 0.5) keeps its detection."""
        flipped = self.detect_many([np.ascontiguousarray(rgb[:, ::-1]) for rgb, _ in items])
        out = []
        for (rgb, dets), mirrored in zip(items, flipped):
            back = [mirror_detection(m, rgb.shape[1]) for m in mirrored]
            corners = np.array([_box_corners(m.bbox) for m in back]).reshape(-1, 4)
            mine = []
            for det in dets:
                ious = box_iou(_box_corners(det.bbox), corners)
                if not len(ious) or ious.max() < 0.5 or len(det.keypoints) != 6:
                    mine.append(det)
                    continue
                twin = back[int(ious.argmax())]
                kps = (np.asarray(det.keypoints) + np.asarray(twin.keypoints)) / 2.0
                bbox = (np.asarray(det.bbox) + np.asarray(twin.bbox)) / 2.0
                mine.append(Detection(tuple(float(v) for v in bbox), det.score, tuple(map(tuple, kps.tolist()))))
            out.append(mine)
        return out


KEYPOINT_MIRROR = (1, 0, 2, 3, 5, 4)  # BlazeFace keypoints of the mirrored image: the two eyes and tragions swap


def mirror_detection(det: Detection, width: int) -> Detection:
    """A detection of the left-right mirrored image (``width`` px) in the original image's coordinates."""
    x, y, w, h = det.bbox
    kps = [((width - 1) - det.keypoints[k][0], det.keypoints[k][1]) for k in KEYPOINT_MIRROR] if det.keypoints else []
    return Detection(((width - 1) - x - w, y, w, h), det.score, tuple(kps))


def _box_corners(bbox: tuple[float, float, float, float]) -> np.ndarray:
    x, y, w, h = bbox
    return np.array([x, y, x + w, y + h], dtype=np.float64)


def _detections(rows: np.ndarray) -> list[Detection]:
    out = []
    for r in rows:
        x0, y0, x1, y1 = (float(v) for v in r[1:5])
        kps = tuple((float(r[5 + 2 * k]), float(r[6 + 2 * k])) for k in range(6))
        out.append(Detection((x0, y0, x1 - x0, y1 - y0), float(r[0]), kps))
    return out


def keypoint_landmarks(keypoints: np.ndarray, bbox: tuple[float, float, float, float]) -> np.ndarray:
    """68 landmarks for a face the mesh could not place: the mean face posed and fitted to the 6 keypoints
    (posed by the keypoints and the detector box)."""
    mean = mean_face_3d() * np.array([1.0, 1.0, -1.0])  # z toward viewer -> into the scene
    rotated = mean @ rotation_from_pose(pose_from_keypoints(keypoints, bbox)).T
    # fitted on the inner keypoints (eye centres, nose tip, mouth centre); the tragions are the noisiest
    own = np.stack([rotated[36:42].mean(0), rotated[42:48].mean(0), rotated[30], rotated[[62, 66]].mean(0)])[:, :2]
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
        outs = _run(self._mesh, np.stack(crops).astype(np.float32) / 255.0)
        presence = _sigmoid(outs["conv2d_30"].reshape(-1))
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
        contours = _run(self._iris, np.stack(crops).astype(np.float32) / 255.0)["output_eyes_contours_and_brows"]
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


def check(**_: Any) -> None:
    """Fail early with ModelsMissingError when a model file or dlib's embedding weights are missing."""
    from curate.analysis.backends import dlib_backend

    for key in MODELS:
        _model_path(key)
    dlib_backend.check()


def create(min_score: float = 0.5, min_tile: int = 384, iris: bool = True, engine: str = "auto",
           **_: Any) -> StagedAnalyzer:
    """The mediapipe backend: BlazeFace full-range + FaceMesh/iris + dlib's 128-d embedding; ``engine`` runs the
    face models (``auto``: torch on a GPU when there is one, else OpenCV DNN; ``opencv``; ``torch``)."""
    from curate.analysis.backends.dlib_backend import DlibEmbedder

    check()
    return StagedAnalyzer(
        "mediapipe", BlazeFaceDetector(min_score, min_tile, engine), FaceMeshLandmarker(iris=iris, engine=engine),
        DlibEmbedder()
    )
