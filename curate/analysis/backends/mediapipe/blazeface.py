"""BlazeFace full-range (192 px input, 2304 anchors, 6 keypoints) with weighted NMS as MediaPipe does; large
images are also searched in overlapping tiles so small faces in group photos are found, and an image where
nothing was found is looked at again zoomed out."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from curate.analysis.protocols import Detection, box_iou
from curate.analysis.runtime.runners import model_net, run_chunks
from curate.analysis.runtime.ssd import decode_ssd, letterbox, tile_grid, weighted_nms

DET_SIZE = 192


@lru_cache(maxsize=1)
def _anchors() -> np.ndarray:
    grid = (np.arange(DET_SIZE // 4) + 0.5) / (DET_SIZE // 4)
    ys, xs = np.meshgrid(grid, grid, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)  # 2304 x (x, y), fixed anchor size 1


def decode_detections(scores: np.ndarray, raw: np.ndarray, min_score: float) -> np.ndarray:
    """BlazeFace outputs -> rows (score, x0, y0, x1, y1, 6 keypoints x/y) in the 0..1 input square."""
    return decode_ssd(scores, raw, _anchors(), DET_SIZE, 6, min_score)


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
        outs = run_chunks(self._net, np.stack(canvases))
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
