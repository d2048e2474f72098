"""Which faces a balanced export takes: one bin per face (yaw x pitch, x expression), a quota per bin (even, or
following the other subset's distribution), the best faces of each bin first. Pure numpy; deterministic for a
seed."""
from __future__ import annotations

from typing import Any

import numpy as np

from curate.ops.gaps import DEFAULT_PITCH_EDGES, DEFAULT_YAW_EDGES


def pose_bins(yaw: np.ndarray, pitch: np.ndarray, expression: np.ndarray | None = None,
              yaw_edges: tuple[float, ...] = DEFAULT_YAW_EDGES, pitch_edges: tuple[float, ...] = DEFAULT_PITCH_EDGES,
              expressions: list[str] | None = None) -> np.ndarray:
    """One integer bin per face: yaw bin x pitch bin (x expression label when given)."""
    yi = np.digitize(np.asarray(yaw, dtype=np.float64), yaw_edges)
    pi = np.digitize(np.asarray(pitch, dtype=np.float64), pitch_edges)
    flat = pi * (len(yaw_edges) + 1) + yi
    if expression is not None:
        names = expressions or sorted(set(expression))
        ei = np.array([names.index(e) if e in names else len(names) for e in expression])
        flat = ei * (len(pitch_edges) + 1) * (len(yaw_edges) + 1) + flat
    return flat


def _quota(counts: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Faces to take per bin: one per weighted bin first, then proportional to weight, capped by what a bin has."""
    take = np.zeros_like(counts)
    live = (weights > 0) & (counts > 0)
    first = np.flatnonzero(live)
    if len(first) >= n:  # fewer faces wanted than bins: the heaviest bins
        take[first[np.argsort(-weights[first], kind="stable")[:n]]] = 1
        return take
    take[first] = 1
    while take.sum() < n:
        open_ = live & (take < counts)
        if not open_.any():
            break
        left = n - int(take.sum())
        share = weights * open_
        want = np.floor(left * share / share.sum()).astype(np.int64)
        if want.sum() == 0:  # remainder smaller than one per bin: heaviest open bins
            order = np.argsort(-(share / np.maximum(take, 1)), kind="stable")
            want[order[:left]] = 1
            want *= open_
        take = np.minimum(take + want, counts)
    return take


def balanced_selection(bins: np.ndarray, quality: np.ndarray, n: int | None, seed: int = 0,
                       target: np.ndarray | None = None) -> np.ndarray:
    """Indices of n faces spread over bins (evenly, or following the target bins' distribution), best first.

    With a target (the other subset's bins), bins the target never shows come last, used only when n cannot be
    reached otherwise. Within a bin the highest quality wins; ties are broken by a seeded shuffle.
    """
    bins = np.asarray(bins)
    total = len(bins)
    n = total if n is None or n >= total else int(n)
    rng = np.random.default_rng(seed)
    shuffle = rng.permutation(total)
    order = shuffle[np.lexsort((-np.asarray(quality, dtype=np.float64)[shuffle], bins[shuffle]))]
    uniq, starts, counts = np.unique(bins[order], return_index=True, return_counts=True)
    if target is None:
        weights = np.ones(len(uniq))
    else:
        tb, tc = np.unique(np.asarray(target), return_counts=True)
        weights = np.zeros(len(uniq))
        hit = np.isin(uniq, tb)
        weights[hit] = tc[np.searchsorted(tb, uniq[hit])]
    take = _quota(counts, weights, n)
    if take.sum() < n:  # bins the target lacks: evenly
        rest = _quota(counts - take, (weights == 0).astype(float), n - int(take.sum()))
        take = take + rest
    chosen = np.concatenate([order[s:s + k] for s, k in zip(starts, take)]) if len(uniq) else np.zeros(0, np.int64)
    return np.sort(chosen)


def face_quality(blur: np.ndarray, identity_ok: list[Any] | None = None, dup_keep: list[Any] | None = None,
                 landmarks_ok: list[Any] | None = None) -> np.ndarray:
    """Ranking within a bin: identity-ok, non-duplicate and really landmarked (not guessed) first, then sharper."""
    q = np.log1p(np.maximum(np.asarray(blur, dtype=np.float64), 0))
    if identity_ok is not None:
        q = q - 100.0 * np.array([v is False for v in identity_ok])
    if dup_keep is not None:
        q = q - 50.0 * np.array([v is False for v in dup_keep])
    if landmarks_ok is not None:  # a crop aligned on keypoint-guessed landmarks trains worse: last resort
        q = q - 25.0 * np.array([v is False for v in landmarks_ok])
    return q
