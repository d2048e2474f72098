"""Hands near faces: MediaPipe's palm detector and 21-point hand landmarker, and hand masks.

- detect: palm_detection_full (192 px input in 0..1, 2016 SSD anchors, box + 7 palm keypoints), weighted NMS;
- landmarks: hand_landmark_full (224 px input in 0..1) on the square around the palm, turned so the
  wrist -> middle-finger knuckle points up, scaled 2.6x and shifted towards the fingers (MediaPipe's own
  palm-to-hand ROI); 21 points and a hand-presence score;
- mask: the palm polygon filled and every finger bone drawn as a thick line (width from the hand's size),
  so a hand in front of a face can be cut out of the face mask.

The ``.tflite`` files (Apache-2.0) ship in ``curate/data/mediapipe``; nothing is downloaded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from curate.analysis.runtime.runners import model_net
from curate.analysis.runtime.ssd import decode_ssd, letterbox, weighted_nms
from curate.core.mesh import Roi, crop_roi, crop_to_image

PALM_SIZE, HAND_SIZE = 192, 224
# the hand skeleton (MediaPipe's 21 points): wrist 0, thumb 1-4, index 5-8, middle 9-12, ring 13-16, pinky 17-20
BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
         (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20))
PALM = (0, 1, 2, 5, 9, 13, 17)


@lru_cache(maxsize=1)
def palm_anchors() -> np.ndarray:
    """The palm detector's 2016 SSD anchor centres (x, y in 0..1): 24x24 cells x 2, then 12x12 cells x 6."""
    out = []
    for cells, per_cell in ((PALM_SIZE // 8, 2), (PALM_SIZE // 16, 6)):
        grid = (np.arange(cells) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        out.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_cell, axis=0))
    return np.vstack(out)


def decode_palms(scores: np.ndarray, raw: np.ndarray, min_score: float) -> np.ndarray:
    """Palm detector outputs -> rows (score, x0, y0, x1, y1, 7 keypoints x/y) in the 0..1 input square."""
    return decode_ssd(scores, raw, palm_anchors(), PALM_SIZE, 7, min_score)


def hand_roi(box: np.ndarray, wrist: np.ndarray, knuckle: np.ndarray) -> Roi:
    """MediaPipe's palm -> hand region: wrist->middle knuckle upright, long side x2.6, shifted half a box
    towards the fingers."""
    direction = np.asarray(knuckle, float) - np.asarray(wrist, float)
    angle = float(np.arctan2(direction[1], direction[0]) + np.pi / 2)
    w, h = float(box[2] - box[0]), float(box[3] - box[1])
    up = direction / max(float(np.linalg.norm(direction)), 1e-9)
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]) + up * 0.5 * h
    return Roi(float(centre[0]), float(centre[1]), max(w, h) * 2.6, angle)


@dataclass
class Hand:
    """One hand: 21 image points (x, y, z), the landmarker's presence score and the palm detector's score."""

    points: np.ndarray
    score: float
    palm_score: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the 21 points."""
        lo, hi = self.points[:, :2].min(0), self.points[:, :2].max(0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


@dataclass
class HandFinder:
    """Palm detector + hand landmarker (runners as :func:`model_net` picks them: the landmarker always by torch,
    which matches TFLite's own interpreter where OpenCV's DNN does not)."""

    min_palm: float = 0.5
    min_hand: float = 0.5
    _palm: Any = field(default=None, repr=False)
    _hand: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._palm = model_net("palm")
        self._hand = model_net("hand")

    def palms(self, rgb: np.ndarray) -> np.ndarray:
        """Palm rows (score, box, 7 keypoints) in source pixels, letterboxed into the 192 px input."""
        canvas, scale, px, py = letterbox(rgb, PALM_SIZE, 0.0, 1.0)
        outs = self._palm(canvas[None])  # one image a call: OpenCV mixes a batch's rows in this model
        scores, raw = outs["Identity_1"], outs["Identity"]
        rows = decode_palms(scores, raw, self.min_palm)
        if not len(rows):
            return rows
        rows = weighted_nms(rows)
        xy = rows[:, 1:].reshape(-1, 9, 2) * PALM_SIZE - np.array([px, py])
        return np.hstack([rows[:, :1], (xy / scale).reshape(-1, 18)])

    def find(self, rgb: np.ndarray) -> list[Hand]:
        """Every hand in an RGB image with its 21 landmarks."""
        hands = []
        for row in self.palms(rgb):
            kps = row[5:].reshape(7, 2)
            roi = hand_roi(row[1:5], kps[0], kps[2])
            crop, matrix = crop_roi(rgb, roi, HAND_SIZE)
            outs = self._hand(crop[None].astype(np.float32) / 255.0)
            # outputs: 21 points in crop px, hand presence (a probability), handedness, 21 points in metres
            presence = float(outs["Identity_1"].reshape(-1)[0])
            if presence < self.min_hand:
                continue
            pts = crop_to_image(outs["Identity"].reshape(21, 3).astype(np.float64), matrix)
            hands.append(Hand(pts, presence, float(row[0])))
        return hands


def hand_mask(shape: tuple[int, int], hands: list[Hand], matrix: np.ndarray | None = None,
              width: float = 0.5) -> np.ndarray:
    """uint8 (H, W) mask (255 = hand) of hands' palms and fingers; ``matrix`` maps image points into it first.

    Finger thickness is ``width`` times the wrist-to-middle-knuckle length of each hand: 0.5, about twice a real
    finger, covers what the hand holds near its fingers (a microphone, a cup) and leaves a seam margin; chosen on
    the occlusion bench's tune faces (hull minus hands IoU 0.943 at 0.22, 0.945 at 0.4-0.5, 0.934 at 0.85).
    """
    mask = np.zeros(shape[:2], np.uint8)
    for hand in hands:
        pts = hand.points[:, :2]
        if matrix is not None:
            pts = pts @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]
        palm_len = float(np.linalg.norm(pts[9] - pts[0]))
        thick = max(int(round(width * palm_len)), 1)
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts[list(PALM)]).astype(np.int32)), 255)
        for a, b in BONES:
            cv2.line(mask, tuple(int(v) for v in np.round(pts[a])), tuple(int(v) for v in np.round(pts[b])), 255,
                     thick, cv2.LINE_AA)
        for p in pts:
            cv2.circle(mask, tuple(int(v) for v in np.round(p)), max(thick // 2, 1), 255, -1, cv2.LINE_AA)
    return mask


def hands_near(hands: list[Hand], box: tuple[float, float, float, float], margin: float = 0.25) -> list[Hand]:
    """The hands whose points come within ``margin`` box sizes of a face box (x, y, w, h)."""
    x, y, w, h = box
    grow = margin * max(w, h)
    near = []
    for hand in hands:
        p = hand.points[:, :2]
        inside = (p[:, 0] > x - grow) & (p[:, 0] < x + w + grow) & (p[:, 1] > y - grow) & (p[:, 1] < y + h + grow)
        if inside.any():
            near.append(hand)
    return near
