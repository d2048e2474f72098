"""Near-duplicate faces: same person AND nearly the same aligned crop; keep the sharpest of each group.

Identity embeddings are built to ignore pose and expression, so two faces of one person at different angles are
close in embedding space: embeddings alone would merge a whole identity. A face here is a near-duplicate of
another only when both its aligned crop (64-bit DCT perceptual hash, Hamming distance) and its identity
embedding are close. Groups are formed around keepers, sharpest first, so every member is within the
thresholds of the face that is kept (no chaining along a slow head turn).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curate.core.hashing import crop_descriptor, hash_to_hex, hashes_from_hex, perceptual_hash
from curate.core.media import load_image
from curate.dataset.subsets import check_subset

HASH_FIELD = "crop_hash"
DEFAULT_MAX_BITS = 6
DEFAULT_MAX_DISTANCE = 0.35
DEFAULT_POSE_TOLERANCE = 10.0
METHODS = ("crop", "brain")  # crop: crop hash + identity; brain: fiftyone.brain near-duplicates


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance of uint64 hashes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int16)


def _chunk_masks(max_bits: int) -> list[np.uint64]:
    """Bit masks such that two hashes within ``max_bits`` agree exactly on at least one of them.

    The 64 bits are cut into max_bits + 2 chunks: a pair differing in at most max_bits bits leaves at least
    two chunks untouched (pigeonhole), so every union of two chunks is a key (e.g. 28 keys of 16 bits for 6
    bits). Keys twice as long as the plain max_bits + 1 chunks make buckets ~2^8 times smaller: at 1M random
    hashes a 9-bit key puts ~2000 faces in a bucket (every pair compared), a 16-bit key ~15."""
    parts = np.array_split(np.arange(64), max_bits + 2)
    chunks = [sum(1 << int(b) for b in part) for part in parts]
    return [np.uint64(a | b) for k, a in enumerate(chunks) for b in chunks[k + 1:]]


def candidate_pairs(hashes: np.ndarray, max_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs i<j whose hashes differ in at most max_bits bits, without comparing every pair."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    found_i, found_j = [], []
    for mask in _chunk_masks(max_bits):
        keys = hashes & mask
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, len(order)])
        for size in np.unique(sizes[sizes > 1]):
            groups = order[starts[sizes == size][:, None] + np.arange(size)]  # (n_groups, size)
            a, b = np.triu_indices(size, 1)
            i, j = groups[:, a].ravel(), groups[:, b].ravel()
            keep = hamming(hashes[i], hashes[j]) <= max_bits
            found_i.append(np.minimum(i, j)[keep])
            found_j.append(np.maximum(i, j)[keep])
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = np.unique(np.stack([np.concatenate(found_i), np.concatenate(found_j)], 1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def confirm_pairs(
    i: np.ndarray, j: np.ndarray, embeddings: np.ndarray, poses: np.ndarray | None,
    max_distance: float, pose_tolerance: float, tracks: np.ndarray | None = None,
) -> np.ndarray:
    """Which candidate pairs are also the same identity (one track, or embedding distance) and the same pose."""
    emb = np.asarray(embeddings, dtype=np.float32)
    ok = np.linalg.norm(emb[i] - emb[j], axis=1) <= max_distance
    if tracks is not None:  # one track is one person, whatever the embedding of a turned face says
        tracks = np.asarray(tracks)
        ok |= tracks[i] == tracks[j]
    if poses is not None:
        ok &= np.abs(poses[i] - poses[j]).max(axis=1) <= pose_tolerance
    return ok


def group_around_keepers(n: int, i: np.ndarray, j: np.ndarray, sharpness: np.ndarray) -> np.ndarray:
    """Group label per face: each group is a keeper (sharpest first) and its not-yet-grouped close faces."""
    from scipy import sparse  # here, not at import: the CLI reads this module's defaults when it starts

    graph = sparse.coo_matrix((np.ones(len(i), bool), (i, j)), shape=(n, n)).tocsr()
    graph = (graph + graph.T).tocsr()
    labels = np.full(n, -1, dtype=np.int64)
    has_pairs = np.diff(graph.indptr) > 0
    order = np.argsort(-np.asarray(sharpness, dtype=np.float64), kind="stable")
    next_label = 0
    for k in order[has_pairs[order]]:
        if labels[k] >= 0:
            continue
        labels[k] = next_label
        members = graph.indices[graph.indptr[k]:graph.indptr[k + 1]]
        members = members[labels[members] < 0]
        labels[members] = next_label
        next_label += 1
    singles = labels < 0
    labels[singles] = next_label + np.arange(int(singles.sum()))
    return labels


@dataclass
class DuplicateGroups:
    """Per-face group labels and which face of each group is kept."""

    labels: np.ndarray
    keep: np.ndarray
    left_out: dict[str, int] = field(default_factory=dict)  # faces not compared, by reason

    @property
    def groups(self) -> int:
        """Groups with more than one face."""
        _, counts = np.unique(self.labels, return_counts=True)
        return int((counts > 1).sum())

    @property
    def removable(self) -> int:
        """Faces that are not the kept one of their group."""
        return int((~self.keep).sum())


def _keepers(labels: np.ndarray, sharpness: np.ndarray) -> np.ndarray:
    order = np.lexsort((-np.asarray(sharpness, dtype=np.float64), labels))
    first = np.r_[True, labels[order][1:] != labels[order][:-1]]
    keep = np.zeros(len(labels), bool)
    keep[order[first]] = True
    return keep


def find_near_duplicates(
    hashes: np.ndarray, embeddings: np.ndarray, sharpness: np.ndarray, poses: np.ndarray | None = None,
    max_bits: int = DEFAULT_MAX_BITS, max_distance: float = DEFAULT_MAX_DISTANCE,
    pose_tolerance: float = DEFAULT_POSE_TOLERANCE, tracks: np.ndarray | None = None,
) -> DuplicateGroups:
    """Near-duplicate groups from crop hashes + identity (the same track, or close embeddings) (+ yaw/pitch),
    keeping the sharpest."""
    n = len(hashes)
    i, j = candidate_pairs(hashes, max_bits)
    ok = confirm_pairs(i, j, embeddings, poses, max_distance, pose_tolerance, tracks)
    labels = group_around_keepers(n, i[ok], j[ok], sharpness)
    return DuplicateGroups(labels, _keepers(labels, sharpness))


def groups_from_neighbors(ids: list[str], neighbors_map: dict[str, list[Any]], sharpness: np.ndarray) -> DuplicateGroups:
    """DuplicateGroups from a fiftyone.brain near-duplicates neighbors_map, keeping the sharpest of each."""
    index = {sid: k for k, sid in enumerate(ids)}
    labels = np.arange(len(ids))
    for sid, dups in neighbors_map.items():
        for dup in dups:
            dup_id = dup[0] if isinstance(dup, (tuple, list)) else dup
            labels[index[dup_id]] = labels[index[sid]]
    return DuplicateGroups(labels, _keepers(labels, sharpness))


def ensure_hashes(samples: Any, progress: bool = True, on_progress: Callable[[float, str], None] | None = None) -> int:
    """Compute and store the crop hash of every sample that lacks one; returns how many were computed."""
    from fiftyone import ViewField as F

    from curate.dataset.store import fo

    missing = samples.match(~F(HASH_FIELD).exists()) if samples.has_sample_field(HASH_FIELD) else samples
    ids, paths = missing.values("id"), missing.values("filepath")
    if not ids:
        return 0
    values = {}
    with fo.ProgressBar(total=len(ids), progress=progress) as bar:
        step = max(len(ids) // 100, 1)
        for done, (sid, path) in enumerate(bar(list(zip(ids, paths)))):
            values[sid] = hash_to_hex(perceptual_hash(load_image(Path(path))))
            if on_progress is not None and done % step == 0:
                on_progress(done / len(ids), f"hashed {done} of {len(ids)} crops")
    dataset = samples._root_dataset
    if not dataset.has_sample_field(HASH_FIELD):
        dataset.add_sample_field(HASH_FIELD, fo.StringField)
    dataset.set_values(HASH_FIELD, values, key_field="id")
    return len(values)


DUPLICATES_VIEW = "near_duplicates"  # each group whole, its kept face first: for review
REMOVE_VIEW = "near_duplicates_to_remove"  # the faces dedupe removes


def save_duplicate_views(ds: Any) -> None:
    """Save the review view (every face of each group that has something to remove, the kept face first) and the
    view of the faces to remove."""
    from fiftyone import ViewField as F

    removing = ds.match(F("dup_keep") == False)  # noqa: E712
    in_groups = None  # group numbers are per subset
    for sub in removing.distinct("subset"):
        groups = removing.match(F("subset") == sub).distinct("dup_group")
        rule = (F("subset") == sub) & F("dup_group").is_in(groups)
        in_groups = rule if in_groups is None else in_groups | rule
    review = ds.match(in_groups) if in_groups is not None else removing
    review = review.sort_by([("subset", 1), ("dup_group", 1), ("dup_keep", -1)])
    ds.save_view(DUPLICATES_VIEW, review, overwrite=True)
    ds.save_view(REMOVE_VIEW, removing.sort_by("dup_group"), overwrite=True)
DEFAULT_BRAIN_THRESHOLD = 0.05


def brain_groups(view: Any, threshold: float = DEFAULT_BRAIN_THRESHOLD, progress: bool = True) -> DuplicateGroups:
    """Near-duplicate groups from fiftyone.brain.compute_near_duplicates on identity embedding + crop descriptor."""
    import fiftyone.brain as fob

    ids, emb, paths, blur = view.values(["id", "embedding", "filepath", "blur"])
    emb = np.stack(emb).astype(np.float32)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-9)
    crops = np.stack([crop_descriptor(load_image(Path(p))) for p in paths])
    combined = np.concatenate([emb, crops], axis=1) / np.sqrt(2.0)
    brain_log = logging.getLogger("fiftyone.brain")
    level = brain_log.level
    brain_log.setLevel(logging.WARNING)  # its "Computing duplicate samples..." lines, once per subset
    try:
        index = fob.compute_near_duplicates(view, threshold=threshold, embeddings=combined, progress=progress)
    finally:
        brain_log.setLevel(level)
    return groups_from_neighbors(ids, index.neighbors_map, np.asarray(blur, dtype=np.float64))


def dataset_dedupe(
    name: str,
    subset: str | None = None,
    method: str = "crop",
    max_bits: int = DEFAULT_MAX_BITS,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    pose_tolerance: float = DEFAULT_POSE_TOLERANCE,
    brain_threshold: float = DEFAULT_BRAIN_THRESHOLD,
    dry_run: bool = False,
    progress: bool = True,
    on_progress: Callable[[float, str], None] | None = None,
) -> tuple[dict[str, DuplicateGroups], dict[str, Any] | None]:
    """Group each subset's near-duplicates (fields dup_group/dup_keep, view 'near_duplicates'), delete reversibly."""
    check_subset(subset, optional=True)
    from fiftyone import ViewField as F

    from curate.dataset.store import load_dataset, read_columns, write_fields
    from curate.dataset.trash import delete_reversibly
    from curate.ops.keep import kept_ids

    if method not in METHODS:
        raise ValueError(f"unknown dedupe method {method!r} (use crop or brain)")
    from curate.ops.identity import usable_faces

    ds = load_dataset(name)
    subsets = [subset] if subset else sorted(ds.distinct("subset"))
    results: dict[str, DuplicateGroups] = {}
    remove: list[str] = []
    for sub in subsets:
        view = ds.match(F("subset") == sub)
        if not len(view):
            raise ValueError(f"subset {sub} of {name!r} has no faces")
        everyone = view.values("id")
        view, left = usable_faces(view)  # non-faces, unsure and other people are not compared ...
        apart = sorted(set(everyone) - set(view.values("id")))
        if apart and ds.has_sample_field("dup_group"):  # ... and belong to no group (nor to an earlier run's)
            write_fields(ds, apart, {"dup_group": [None] * len(apart), "dup_keep": [None] * len(apart)})
        if not len(view):
            results[sub] = DuplicateGroups(np.zeros(0, np.int64), np.zeros(0, bool), left)
            continue
        if method == "crop":
            ensure_hashes(view, progress=progress, on_progress=on_progress)
            tracked = ds.has_sample_field("track")
            c = read_columns(view, [HASH_FIELD, "blur", "yaw", "pitch", *(["track"] if tracked else [])],
                             vector="embedding")
            ids = c["id"]
            groups = find_near_duplicates(
                hashes_from_hex(c[HASH_FIELD]), c["embedding"], np.asarray(c["blur"], dtype=np.float64),
                np.c_[c["yaw"], c["pitch"]].astype(np.float64), max_bits, max_distance, pose_tolerance,
                np.asarray(c["track"], dtype=object) if tracked else None,
            )
        else:
            ids = view.values("id")
            groups = brain_groups(view, brain_threshold, progress)
        kept = kept_ids(view)
        if kept:  # faces a user marked keep are never removed
            groups.keep |= np.array([sid in kept for sid in ids], dtype=bool)
        write_fields(ds, ids, {"dup_group": groups.labels.astype(int).tolist(), "dup_keep": [bool(k) for k in groups.keep]})
        groups.left_out = left
        results[sub] = groups
        remove += [sid for sid, keep in zip(ids, groups.keep) if not keep]
    save_duplicate_views(ds)
    if dry_run or not remove:
        return results, None
    return results, delete_reversibly(ds, ds.select(remove), reason=f"dedupe ({method})")
