"""Identity scoring and clustering on face embeddings (scikit-learn), and the cleanup views.

A face's ``identity_distance`` is the Euclidean distance between its L2-normalised embedding and
the normalised mean embedding of the identity: the reference faces when given, else the largest
cluster of the subset (average-linkage agglomerative clustering). ``identity_ok`` is distance
<= threshold. Defaults per backend: mediapipe and dlib 0.35 (both use dlib's 128-d embedding), insightface 1.0 (ArcFace); measured on the sample
media, the same person lies within 0.33 of their centroid and other people from 0.36 on.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.neighbors import NearestCentroid

from curate.subsets import check_subset

DEFAULT_THRESHOLD = {"mediapipe": 0.35, "dlib": 0.35, "insightface": 1.0}
CLUSTER_THRESHOLD = {"mediapipe": 0.5, "dlib": 0.5, "insightface": 1.1}
MAX_FIT = 3000  # faces the clustering is fitted on (average linkage is quadratic); the rest go to the nearest centre


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cluster_embeddings(emb: np.ndarray, threshold: float, max_fit: int = MAX_FIT, seed: int = 0) -> np.ndarray:
    """Cluster labels (0 = largest cluster) from average-linkage clustering; big sets fit on a subsample."""
    emb = normalise_rows(emb)
    if len(emb) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(emb) == 1:
        return np.zeros(1, dtype=np.int64)
    rng = np.random.default_rng(seed)
    fit_idx = np.sort(rng.choice(len(emb), max_fit, replace=False)) if len(emb) > max_fit else np.arange(len(emb))
    model = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, linkage="average")
    fit_labels = model.fit_predict(emb[fit_idx])
    if len(fit_idx) < len(emb) and len(set(fit_labels)) > 1:
        labels = NearestCentroid().fit(emb[fit_idx], fit_labels).predict(emb)
    elif len(fit_idx) < len(emb):
        labels = np.zeros(len(emb), dtype=np.int64)
    else:
        labels = fit_labels
    order = np.argsort(-np.bincount(labels), kind="stable")  # relabel by size
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return remap[labels]


@dataclass
class IdentityScores:
    """Per-face distance to the identity, verdict and cluster label."""

    distance: np.ndarray
    ok: np.ndarray
    cluster: np.ndarray
    threshold: float


def score_identity(
    emb: np.ndarray, reference: np.ndarray | None = None, threshold: float = 0.35, cluster_threshold: float = 0.5
) -> IdentityScores:
    """Distance of every embedding to the reference identity (or the dominant cluster)."""
    emb = normalise_rows(emb)
    clusters = cluster_embeddings(emb, cluster_threshold)
    anchor = normalise_rows(reference) if reference is not None and len(reference) else emb[clusters == 0]
    centre = normalise_rows(anchor.mean(axis=0, keepdims=True))[0]
    distance = np.linalg.norm(emb - centre, axis=1)
    return IdentityScores(distance, distance <= threshold, clusters, threshold)


WRONG_IDENTITY_VIEW = "wrong_identity"


def reference_faces(analyzer: Any, paths: list[str | Path], on_error: Callable[[Path | str, str], None] | None = None
                    ) -> list[list[Any]]:
    """The faces of each reference image that has any; bad files, videos and faceless images get an error line."""
    from curate.extract import report_error
    from curate.media import MediaError, list_sources, load_image

    report = on_error or report_error
    sources, bad = list_sources([str(p) for p in paths])
    for path, reason in bad:
        report(path, reason)
    found = []
    for src in sources:
        if src.is_video:
            report(src.path, "reference faces come from images, not videos")
            continue
        try:
            faces = analyzer.analyze(load_image(src.path))
        except MediaError as exc:
            report(src.path, str(exc))
            continue
        if faces:
            found.append(faces)
        else:
            report(src.path, "no face found in the reference image")
    return found


def dataset_identity(
    name: str,
    subset: str,
    references: list[str] | None = None,
    threshold: float | None = None,
    review: bool = False,
    backend: str = "dlib",
) -> tuple[IdentityScores, list[str]]:
    """Score a subset's faces against its identity, store the fields and save the cleanup views."""
    check_subset(subset)
    from fiftyone import ViewField as F

    from curate.analysis.backends import create_analyzer
    from curate.store import load_dataset, read_ids_and_vectors, write_fields
    from curate.workbench import KEEP_FIELD

    ds = load_dataset(name)
    view = ds.match(F("subset") == subset)
    ids, vectors = read_ids_and_vectors(view, "embedding")
    if not ids:
        raise ValueError(f"subset {subset} of {name!r} has no faces")
    if ds.has_sample_field("backend"):  # one backend per dataset: the first face's (no full scan)
        backend = view.limit(1).values("backend")[0] or backend
    reference = None
    if references:
        vecs = [f.embedding for faces in reference_faces(create_analyzer(backend), references) for f in faces]
        if not vecs:
            raise ValueError("no face found in the reference images")
        reference = np.stack(vecs)
    limit = DEFAULT_THRESHOLD.get(backend, 0.35) if threshold is None else threshold
    scores = score_identity(vectors, reference, limit, CLUSTER_THRESHOLD.get(backend, 0.5))
    write_fields(ds, ids, {"identity_distance": scores.distance.astype(float).tolist(),
                           "identity_ok": [bool(v) for v in scores.ok],
                           "identity_cluster": scores.cluster.astype(int).tolist()})
    saved = [WRONG_IDENTITY_VIEW]
    wrong = ds.match((F("subset") == subset) & (F("identity_ok") == False) & (F(KEEP_FIELD) != True))  # noqa: E712
    wrong = wrong.sort_by("identity_distance", reverse=True)  # faces a user marked keep stay out of it
    ds.save_view(WRONG_IDENTITY_VIEW, wrong, overwrite=True)
    if review:
        ds.save_view("identity_review", view.sort_by("identity_distance", reverse=True), overwrite=True)
        saved.append("identity_review")
    for old in ds.list_saved_views():
        if old.startswith(f"identity: {subset} cluster"):
            ds.delete_saved_view(old)
    for label, count in zip(*np.unique(scores.cluster, return_counts=True)):
        if count >= 2 or label == 0:
            vname = f"identity: {subset} cluster {label}"
            ds.save_view(vname, ds.match((F("subset") == subset) & (F("identity_cluster") == int(label))), overwrite=True)
            saved.append(vname)
    return scores, saved
