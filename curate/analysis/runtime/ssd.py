"""Single-shot detector outputs of MediaPipe's models (BlazeFace, the palm detector): the letterboxed input,
anchor decoding, MediaPipe's weighted non-maximum suppression and the tiles that search large images."""
from __future__ import annotations

import cv2
import numpy as np

from curate.analysis.protocols import box_iou


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


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -100.0, 100.0)))


def decode_ssd(scores: np.ndarray, raw: np.ndarray, anchors: np.ndarray, input_size: int, keypoints: int,
               min_score: float) -> np.ndarray:
    """MediaPipe SSD outputs (fixed-size anchors) -> rows (score, x0, y0, x1, y1, keypoints x/y) in 0..1."""
    score = sigmoid(scores.reshape(-1))
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
