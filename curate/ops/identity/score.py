"""Identity decided per track: from its reliable faces, given to all its faces, unsure without any.

The embedding tells people apart on faces it can see (frontal enough, landmarked, a real face); a turned
face is the same person as the frontal face it turned from, and the track says so. Each track (an image's
face is a track of its own) becomes one unit: the mean of its reliable faces' embeddings. Units are
clustered by average linkage with cannot-links between tracks that share a frame, and compared with the
identity: the reference faces (a person is in a frame once: where two kept tracks share a frame, only the
nearer one's face is kept there, and a track that shares most of its frames so is another person), or else
the cluster holding the most faces. A track without a reliable face is *unsure*: not accepted, not flagged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.ops.identity.cluster import constrained_average_linkage, normalise_rows, order_by_weight
from curate.ops.tracks.link import cannot_link_pairs

MAX_FIT = 3000  # units the clustering is fitted on (the ones with most faces); the rest join the nearest cluster


@dataclass
class IdentityScores:
    """Per face: its track's distance to the identity (NaN when unsure), kept, unsure, and identity cluster."""

    distance: np.ndarray
    ok: np.ndarray
    unsure: np.ndarray
    cluster: np.ndarray
    threshold: float
    second_look: int = 0  # faces decided by the second look (dataset.second_look)
    not_face: np.ndarray | None = None  # detections that are not faces (is_face False): among the unsure, never judged

    @property
    def unsure_faces(self) -> np.ndarray:
        """Real faces whose identity is unsure (non-face detections apart)."""
        return self.unsure & ~self.not_face if self.not_face is not None else self.unsure

    @property
    def wrong(self) -> np.ndarray:
        """Faces decided to be another person."""
        return ~self.ok & ~self.unsure


def reliable_faces(yaw: np.ndarray, landmarks_ok: np.ndarray, max_yaw: float,
                   is_face: np.ndarray | None = None) -> np.ndarray:
    """Faces whose embedding can be trusted: landmarked, |yaw| within what the embedder separates, real faces."""
    ok = np.asarray(landmarks_ok, dtype=bool) & (np.abs(np.nan_to_num(np.asarray(yaw, float), nan=180.0)) <= max_yaw)
    if is_face is not None:
        ok &= np.asarray([v is not False for v in is_face], dtype=bool)
    return ok


def track_units(tracks: np.ndarray, emb: np.ndarray, reliable: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(unit of each face, unit embeddings, whether a unit has a reliable face, faces per unit)."""
    _, unit, counts = np.unique(np.asarray(tracks), return_inverse=True, return_counts=True)
    emb = normalise_rows(emb)
    sums = np.zeros((len(counts), emb.shape[1]), dtype=np.float64)
    np.add.at(sums, unit[reliable], emb[reliable])
    has = np.bincount(unit[reliable], minlength=len(counts)) > 0
    return unit, normalise_rows(sums), has, counts


def _cluster_units(units: np.ndarray, has: np.ndarray, counts: np.ndarray, cannot: set[tuple[int, int]],
                   threshold: float, max_fit: int) -> np.ndarray:
    """Cluster labels of the reliable units (-1 for the others), 0 = most faces."""
    labels = np.full(len(units), -1, dtype=np.int64)
    idx = np.flatnonzero(has)
    if not len(idx):
        return labels
    fit = idx[np.argsort(-counts[idx], kind="stable")[:max_fit]]
    pos = {int(u): k for k, u in enumerate(fit)}
    pairs = [(pos[a], pos[b]) for a, b in cannot if a in pos and b in pos]
    fit_labels = constrained_average_linkage(units[fit], threshold, pairs, counts[fit])
    labels[fit] = fit_labels
    rest = np.setdiff1d(idx, fit)
    if len(rest):  # the rest join the nearest cluster centre within the threshold, else stand alone
        centres = normalise_rows(np.stack([units[fit][fit_labels == c].mean(axis=0) for c in range(fit_labels.max() + 1)]))
        d = np.linalg.norm(units[rest][:, None, :] - centres[None, :, :], axis=2)
        near = d.argmin(axis=1)
        alone = d[np.arange(len(rest)), near] > threshold
        near[alone] = fit_labels.max() + 1 + np.arange(int(alone.sum()))
        labels[rest] = near
    labels[idx] = order_by_weight(labels[idx], counts[idx])
    return labels


def one_per_frame(face_dist: np.ndarray, candidates: np.ndarray, frame_groups: np.ndarray, unit: np.ndarray
                  ) -> np.ndarray:
    """The candidate faces kept when a person is in a frame at most once: in each frame the one whose track is
    nearest the identity; a track that loses most of its faces that way is another person altogether."""
    idx = np.flatnonzero(candidates)
    order = idx[np.lexsort((face_dist[idx], np.asarray(frame_groups)[idx]))]
    groups = np.asarray(frame_groups)[order]
    first = np.r_[True, groups[1:] != groups[:-1]] if len(order) else np.zeros(0, dtype=bool)
    kept = np.zeros(len(candidates), dtype=bool)
    kept[order[first]] = True
    lost = np.bincount(unit[candidates & ~kept], minlength=unit.max() + 1)
    total = np.bincount(unit[candidates], minlength=unit.max() + 1)
    return kept & ~(2 * lost >= np.maximum(total, 1))[unit]


def score_identity(emb: np.ndarray, reference: np.ndarray | None = None, threshold: float = 0.35,
                   cluster_threshold: float = 0.5, tracks: np.ndarray | None = None,
                   reliable: np.ndarray | None = None, frame_groups: np.ndarray | None = None,
                   max_fit: int = MAX_FIT) -> IdentityScores:
    """Decide every face's identity through its track.

    Without ``reference`` the identity is the cluster (of tracks, linked below ``cluster_threshold``) with
    the most faces and a track is kept when it lies in it; with ``reference`` (embeddings of the right
    person) a track is kept when its mean lies within ``threshold`` of theirs, except in frames where a nearer
    kept track has a face (all of it when that is most of its faces). ``tracks`` default to one
    per face, ``reliable`` to every face; ``frame_groups`` (one id per source frame) make cannot-links.
    """
    emb = normalise_rows(emb)
    n = len(emb)
    if n == 0:
        empty = np.zeros(0)
        return IdentityScores(empty, empty.astype(bool), empty.astype(bool), empty.astype(np.int64), threshold)
    tracks = np.arange(n) if tracks is None else np.asarray(tracks)
    reliable = np.ones(n, dtype=bool) if reliable is None else np.asarray(reliable, dtype=bool)
    unit, units, has, counts = track_units(tracks, emb, reliable)
    cannot = cannot_link_pairs(frame_groups, unit) if frame_groups is not None else set()
    labels = _cluster_units(units, has, counts, cannot, cluster_threshold, max_fit)
    if reference is not None and len(reference):
        centre = normalise_rows(normalise_rows(reference).mean(axis=0, keepdims=True))[0]
        unit_dist = np.linalg.norm(units - centre, axis=1)
        unit_ok = has & (unit_dist <= threshold)
    else:
        dominant = has & (labels == 0)
        centre = normalise_rows((units[dominant] * counts[dominant, None]).sum(axis=0, keepdims=True))[0]
        unit_dist = np.linalg.norm(units - centre, axis=1)
        unit_ok = dominant
    unit_dist = np.where(has, unit_dist, np.nan)
    ok = unit_ok[unit]
    if reference is not None and len(reference) and frame_groups is not None:
        ok = one_per_frame(unit_dist[unit], ok, frame_groups, unit)
    return IdentityScores(unit_dist[unit], ok, ~has[unit], labels[unit],
                          threshold if reference is not None and len(reference) else cluster_threshold)
