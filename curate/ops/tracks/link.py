"""Face tracks: faces of consecutive frames of one shot linked by motion, gated by appearance.

Pure functions over arrays (frame, box, shot, embedding per face): frame by frame, the open tracks of the
same shot are matched one-to-one to the frame's faces by the Hungarian algorithm (scipy) on a cost of the
box centre's distance from where the track's motion puts it (in face sizes) plus the change of size, and
the embedding distance; pairs past a gate on any of them are never matched. So a track never crosses a
cut, two faces of one frame never share a track, and a track survives a few frames without a detection.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

MAX_JUMP = 0.5  # centre distance, in face sizes, allowed from one frame to the next ...
JUMP_PER_FRAME = 0.08  # ... plus this per frame of gap (frames skipped by --every, missed detections)
MAX_JUMP_CAP = 1.5
MAX_SCALE = float(np.log(1.6))  # face size change allowed between linked faces
MAX_GAP = 10  # frames a track waits for its face (at least 4 analysed frames when --every skips more)
EMBED_WEIGHT = 0.5
_BLOCKED = 1e6


@dataclass
class _Track:
    label: int
    shot: int
    frame: int
    centre: np.ndarray
    size: float
    velocity: np.ndarray
    embedding: np.ndarray | None


def _centres_sizes(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return b[:, :2] + b[:, 2:] / 2, np.sqrt(np.maximum(b[:, 2] * b[:, 3], 1e-6))


def frame_step(frames: np.ndarray) -> int:
    """The spacing of analysed frames (``--every``): the smallest gap between distinct frame numbers."""
    uniq = np.unique(np.asarray(frames, dtype=np.int64))
    return int(np.diff(uniq).min()) if len(uniq) > 1 else 1


def link_tracks(frames: np.ndarray, boxes: np.ndarray, shots: np.ndarray | None = None,
                embeddings: np.ndarray | None = None, max_embed: float = 0.6, step: int | None = None,
                max_gap: int = MAX_GAP) -> np.ndarray:
    """Track number of each face (0, 1, ... in order of first appearance), faces given as parallel arrays
    of frame index, box (x, y, w, h) and shot; ``embeddings`` (unit rows) gate links at ``max_embed``."""
    frames = np.asarray(frames, dtype=np.int64)
    n = len(frames)
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return labels
    shots = np.zeros(n, dtype=np.int64) if shots is None else np.asarray(shots, dtype=np.int64)
    centres, sizes = _centres_sizes(boxes)
    emb = None if embeddings is None else np.asarray(embeddings, dtype=np.float32)
    step = frame_step(frames) if step is None else max(1, step)
    gap_limit = max(max_gap, 4 * step)
    open_tracks: list[_Track] = []
    count = 0
    order = np.argsort(frames, kind="stable")
    bounds = np.flatnonzero(np.diff(frames[order])) + 1
    for group in np.split(order, bounds):
        frame = int(frames[group[0]])
        open_tracks = [t for t in open_tracks if frame - t.frame <= gap_limit]
        cost = np.full((len(open_tracks), len(group)), _BLOCKED)
        for i, tr in enumerate(open_tracks):
            gap = frame - tr.frame
            predicted = tr.centre + tr.velocity * gap
            for j, face in enumerate(group):
                if shots[face] != tr.shot:
                    continue
                size = np.sqrt(tr.size * sizes[face])
                jump = float(np.linalg.norm(centres[face] - predicted)) / size
                scale = abs(float(np.log(sizes[face] / tr.size)))
                if jump > min(MAX_JUMP + JUMP_PER_FRAME * (gap - 1), MAX_JUMP_CAP) or scale > MAX_SCALE:
                    continue
                appearance = 0.0
                if emb is not None and tr.embedding is not None:
                    appearance = float(np.linalg.norm(emb[face] - tr.embedding))
                    if appearance > max_embed:
                        continue
                cost[i, j] = jump + scale + EMBED_WEIGHT * appearance
        matched: set[int] = set()
        if open_tracks:
            rows, cols = linear_sum_assignment(cost)
            for i, j in zip(rows, cols):
                if cost[i, j] >= _BLOCKED:
                    continue
                tr, face = open_tracks[i], int(group[j])
                gap = frame - tr.frame
                velocity = (centres[face] - tr.centre) / gap
                tr.velocity = 0.5 * tr.velocity + 0.5 * velocity
                tr.frame, tr.centre, tr.size = frame, centres[face], float(sizes[face])
                if emb is not None:
                    tr.embedding = emb[face]
                labels[face] = tr.label
                matched.add(j)
        for j, face in enumerate(group):
            if j in matched:
                continue
            face = int(face)
            labels[face] = count
            open_tracks.append(_Track(count, int(shots[face]), frame, centres[face], float(sizes[face]),
                                      np.zeros(2), None if emb is None else emb[face]))
            count += 1
    return labels


def cannot_link_pairs(groups: np.ndarray, tracks: np.ndarray) -> set[tuple[int, int]]:
    """Pairs (a < b) of track labels that hold faces of one frame (``groups``: one id per source frame)."""
    pairs: set[tuple[int, int]] = set()
    groups = np.asarray(groups)
    tracks = np.asarray(tracks)
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(groups[order][1:] != groups[order][:-1]) + 1
    for part in np.split(order, bounds):
        labels = np.unique(tracks[part])
        for a in range(len(labels)):
            for b in range(a + 1, len(labels)):
                pairs.add((int(labels[a]), int(labels[b])))
    return pairs
