"""Shot cuts of a video: colour and layout change between consecutive frames, against the local level.

A hard cut changes the colour distribution and the layout of the whole frame at once; motion, a face
turning or a lighting change alters one of them, less, or for one frame only. Each frame is reduced to a
normalised HSV histogram of a small thumbnail and a standardised 32x18 grey thumbnail. Frame t starts a
new shot when the histogram change ``d[t]`` (half the L1 distance, 0..1) is large in itself and several
times the change around it (the local median over a window that leaves t out, as PySceneDetect's
adaptive detector does), and the layout changed too (1 - correlation of the grey thumbnails): a stage
light or a colour flicker changes the histogram of a still layout, a cut changes both. On the labelled
videos (bench/shot_truth.py) cuts measure 0.38-0.65 / 0.50-0.99, the strongest non-cuts 0.30 / 0.03.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np

METHOD = "hist+layout-1"  # stored with a video's cuts: cuts found by another method are found again
THUMB = (64, 36)  # thumbnail (w, h): enough for a colour histogram, cheap to make
HIST_BINS = (16, 4, 4)  # hue, saturation, value
MIN_CHANGE = 0.25  # a cut changes at least this share of the histogram mass
RATIO = 3.0  # ... and this many times the local median change
WINDOW = 4  # frames each side for the local level
MIN_SHOT = 4  # frames: a "shot" shorter than this is a flash or a dissolve step, not a shot
LAYOUT = (32, 18)  # grey thumbnail for the layout change
MIN_LAYOUT_CHANGE = 0.3  # 1 - correlation of consecutive grey thumbnails a cut reaches
_HIST = int(np.prod(HIST_BINS))


def frame_signature(rgb: np.ndarray) -> np.ndarray:
    """A frame's normalised HSV colour histogram (sums to 1) followed by its standardised grey thumbnail."""
    thumb = cv2.resize(rgb, THUMB, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(HIST_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    grey = cv2.resize(cv2.cvtColor(thumb, cv2.COLOR_RGB2GRAY), LAYOUT, interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    grey = (grey - grey.mean()) / (grey.std() + 1e-3)
    return np.concatenate([hist / max(float(hist.sum()), 1.0), grey]).astype(np.float32)


def frame_changes(signatures: np.ndarray) -> np.ndarray:
    """(colour, layout) change of each frame from the one before (zeros for the first): half the L1 distance
    of the histograms, and 1 - the correlation of the grey thumbnails."""
    sig = np.asarray(signatures, dtype=np.float32)
    out = np.zeros((len(sig), 2), dtype=np.float32)
    if len(sig) > 1:
        out[1:, 0] = 0.5 * np.abs(np.diff(sig[:, :_HIST], axis=0)).sum(axis=1)
        out[1:, 1] = 1.0 - (sig[1:, _HIST:] * sig[:-1, _HIST:]).mean(axis=1)
    return out


def find_cuts(changes: np.ndarray, min_change: float = MIN_CHANGE, ratio: float = RATIO, window: int = WINDOW,
              min_shot: int = MIN_SHOT, min_layout: float = MIN_LAYOUT_CHANGE) -> list[int]:
    """Frames that start a new shot, from per-frame (colour, layout) changes (``frame_changes``)."""
    changes = np.asarray(changes, dtype=np.float64).reshape(len(changes), -1)
    d = changes[:, 0]
    layout = changes[:, 1] if changes.shape[1] > 1 else np.ones(len(d))
    cuts: list[int] = []
    for t in range(1, len(d)):
        if d[t] < min_change or layout[t] < min_layout:
            continue
        around = np.concatenate([d[max(1, t - window):t], d[t + 1:t + 1 + window]])
        level = float(np.median(around)) if len(around) else 0.0
        if d[t] < ratio * max(level, 0.02):
            continue
        if not (d[t] >= d[max(1, t - 1)] and d[t] >= d[min(len(d) - 1, t + 1)]):
            continue  # not the peak of its neighbourhood
        if cuts and t - cuts[-1] < min_shot:
            if d[t] > d[cuts[-1]]:
                cuts[-1] = t
            continue
        cuts.append(t)
    return cuts


def shot_of(frames: np.ndarray, cuts: Iterable[int]) -> np.ndarray:
    """Shot number (0 = before the first cut) of each frame index."""
    return np.searchsorted(np.asarray(sorted(cuts), dtype=np.int64), np.asarray(frames, dtype=np.int64),
                           side="right")


def video_cuts(path: Path | str, on_frame: Callable[[], None] | None = None) -> tuple[list[int], int]:
    """(cut frames, frames read) of a video, every frame decoded once, one frame in memory."""
    from curate.core.media import open_video

    cap = open_video(Path(path))
    changes: list[np.ndarray] = []  # two floats a frame: a film's worth is a few MB
    last = None
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            sig = frame_signature(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            changes.append(np.zeros(2, np.float32) if last is None else frame_changes(np.stack([last, sig]))[1])
            last = sig
            if on_frame is not None:
                on_frame()
    finally:
        cap.release()
    return find_cuts(np.asarray(changes).reshape(-1, 2)), len(changes)
