"""Average-linkage clustering with cannot-links (faces of one frame are different people).

UPGMA on Euclidean distances of unit vectors, merging the closest pair of clusters until the closest
allowed pair is farther than the threshold; two clusters holding a cannot-linked pair are never merged.
Each cluster keeps its nearest allowed neighbour, so a merge recomputes only the rows that pointed at the
merged pair: about n^2 work in all instead of n^3.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def pairwise_distances(x: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of x (float64, exact zeros on the diagonal)."""
    x = np.asarray(x, dtype=np.float64)
    sq = (x * x).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(d2)


def order_by_weight(labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Relabel clusters 0, 1, ... by decreasing total weight (ties: first seen first)."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return labels
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    totals = np.bincount(inverse, weights=w)
    order = np.lexsort((first, -totals))
    remap = np.empty(len(order), dtype=np.int64)
    remap[order] = np.arange(len(order))
    return remap[inverse]


def constrained_average_linkage(emb: np.ndarray, threshold: float,
                                cannot_link: Iterable[tuple[int, int]] = (),
                                weights: np.ndarray | None = None) -> np.ndarray:
    """Cluster labels of the rows (0 = the cluster of largest total ``weights``), never joining cannot-links."""
    x = normalise_rows(emb)
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    dist = pairwise_distances(x)
    blocked = np.zeros((n, n), dtype=bool)
    for a, b in cannot_link:
        blocked[a, b] = blocked[b, a] = True
    np.fill_diagonal(blocked, True)
    active = np.ones(n, dtype=bool)
    size = np.ones(n)
    label = np.arange(n)

    def nearest(i: int) -> tuple[float, int]:
        row = np.where(blocked[i] | ~active, np.inf, dist[i])
        j = int(np.argmin(row))
        return float(row[j]), j

    nn_d = np.empty(n)
    nn_j = np.empty(n, dtype=np.int64)
    for i in range(n):
        nn_d[i], nn_j[i] = nearest(i)
    while True:
        masked = np.where(active, nn_d, np.inf)
        i = int(np.argmin(masked))
        if not np.isfinite(masked[i]) or masked[i] > threshold:
            break
        j = int(nn_j[i])
        merged = (size[i] * dist[i] + size[j] * dist[j]) / (size[i] + size[j])
        dist[i], dist[:, i] = merged, merged
        blocked[i] |= blocked[j]
        blocked[:, i] = blocked[i]
        active[j] = False
        size[i] += size[j]
        label[label == j] = i
        nn_d[i], nn_j[i] = nearest(i)
        rest = np.flatnonzero(active)
        rest = rest[rest != i]
        stale = np.isin(nn_j[rest], (i, j))
        closer = rest[~stale]
        closer = closer[~blocked[closer, i] & (dist[closer, i] < nn_d[closer])]
        nn_d[closer], nn_j[closer] = dist[closer, i], i
        for k in rest[stale]:
            nn_d[k], nn_j[k] = nearest(int(k))
    return order_by_weight(label, weights)
