"""`faceset identity` on a subset of a dataset: tracks -> identity fields and the cleanup views.

Fields: ``identity_ok`` (True: the identity; False: another person; None: unsure — its track has no face
the embedding can judge), ``identity_distance`` (the track's distance to the identity; None when unsure),
``identity_cluster`` (the track's identity cluster, 0 = most faces; -1 when unsure); for tracks given a second
look (``second_look.py``) ``identity_second_look`` (their fused distance) and ``embedding_faceres``.
Views: ``wrong_identity`` (worst first), ``identity_unsure`` (by track, for review) — both over every subset
identity was run on — ``identity_review`` (the subset: unsure first, then worst first) and ``identity: <subset>
cluster N`` (clusters of two faces or more).
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.analysis.frame import face_pose
from curate.analysis.protocols import largest_face
from curate.core.media import MediaError, list_sources, load_image, printable, report_error
from curate.dataset.store import load_dataset, read_columns, write_fields
from curate.dataset.subsets import check_subset
from curate.ops.identity.score import IdentityScores, reliable_faces, score_identity
from curate.ops.tracks.update import update_tracks

WRONG_IDENTITY_VIEW = "wrong_identity"
UNSURE_VIEW = "identity_unsure"


@dataclass(frozen=True)
class IdentitySettings:
    """How far an embedding can be trusted: distances and the |yaw| up to which it separates people."""

    reference_threshold: float  # a track's mean to the reference faces' mean
    cluster_threshold: float  # average linkage of track means
    reliable_yaw: float  # faces turned further do not vote for their track's identity


# cluster_threshold and reliable_yaw chosen on the tune videos of bench/identity_truth.py; reference_threshold
# below the CMU turned-vs-frontal-centre equal-error distance (0.387, bench/out/embedder_auc.txt), as faceset's
# per-face limit was (0.35)
_SETTINGS = {
    "dlib": IdentitySettings(reference_threshold=0.35, cluster_threshold=0.4, reliable_yaw=35.0),
    "insightface": IdentitySettings(reference_threshold=1.0, cluster_threshold=1.1, reliable_yaw=45.0),  # not measured here
}
_EMBEDDER_OF_BACKEND = {"mediapipe": "dlib", "dlib": "dlib", "insightface": "insightface"}


def identity_settings(backend: str) -> IdentitySettings:
    """The identity settings of the embedding a backend stores."""
    return _SETTINGS[_EMBEDDER_OF_BACKEND.get(backend, "dlib")]


def reference_faces(analyzer: Any, paths: list[str | Path], on_error: Callable[[Path | str, str], None] | None = None
                    ) -> list[tuple[Path, list[Any]]]:
    """(image, its faces) of each reference image that has any; bad files, videos and faceless images get an
    error line."""
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
            found.append((src.path, faces))
        else:
            report(src.path, "no face found in the reference image")
    return found


def reference_vectors(backend: str, paths: list[str]) -> np.ndarray:
    """One embedding per reference image: its face, or its largest face (said in one line) when it has several;
    a face the embedding cannot judge (landmarks not placed, turned too far) is refused in one line."""
    return np.stack([face.embedding for _, face in usable_reference_faces(backend, paths)])


def usable_reference_faces(backend: str, paths: list[str]) -> list[tuple[Path, Any]]:
    """(image, face) of each reference image's usable face (``reference_vectors``' choice, said the same way)."""
    from tqdm import tqdm

    from curate.analysis.registry import create_analyzer
    max_yaw = identity_settings(backend).reliable_yaw
    used = []
    for path, faces in reference_faces(create_analyzer(backend), paths):
        if len(faces) > 1:
            tqdm.write(f"faceset: warning: {printable(path)}: {len(faces)} faces in the reference image; its largest "
                       "face is the reference", file=sys.stderr)
        face = largest_face(faces)
        yaw = face_pose(face)[0]
        if not face.landmarks_ok:
            report_error(path, "the reference face's landmarks could not be placed (covered or blurred?); not used")
        elif abs(yaw) > max_yaw:
            report_error(path, f"the reference face is turned {abs(yaw):.0f} degrees, past the {max_yaw:.0f} the "
                               "identity embedding can judge; not used (give a more frontal photo)")
        else:
            used.append((path, face))
    if not used:
        raise ValueError("no usable face found in the reference images")
    return used


def dataset_identity(
    name: str,
    subset: str,
    references: list[str] | None = None,
    threshold: float | None = None,
    review: bool = False,
    backend: str = "mediapipe",
) -> tuple[IdentityScores, list[str]]:
    """Decide the identity of a subset's faces through their tracks, store the fields, save the views."""
    check_subset(subset)
    from fiftyone import ViewField as F

    from curate.ops.keep import KEEP_FIELD
    ds = load_dataset(name)
    view = ds.match(F("subset") == subset)
    if not len(view):
        raise ValueError(f"subset {subset} of {name!r} has no faces")
    if ds.has_sample_field("backend"):  # one backend per dataset: the first face's (no full scan)
        backend = view.limit(1).values("backend")[0] or backend
    if not ds.has_sample_field("track") or len(view.exists("track", False)):  # extracted before tracks existed
        update_tracks(ds, sorted(set(view.exists("track", False).distinct("source"))), progress=False)
    fields = ["track", "source", "source_type", "frame", "source_landmarks", "yaw", "landmarks_ok",
              *(["is_face"] if ds.has_sample_field("is_face") else [])]
    cols = read_columns(view, fields, vector="embedding")
    settings = identity_settings(backend)
    reliable = reliable_faces(np.asarray(cols["yaw"], float), np.asarray(cols["landmarks_ok"], bool),
                              settings.reliable_yaw, cols.get("is_face"))
    ref_faces = usable_reference_faces(backend, references) if references else None
    reference = np.stack([face.embedding for _, face in ref_faces]) if ref_faces else None
    groups = np.asarray([f"{s}\0{f}" for s, f in zip(cols["source"], cols["frame"])])
    tracks = np.asarray(cols["track"])
    scores = score_identity(cols["embedding"], reference,
                            settings.reference_threshold if threshold is None or not references else threshold,
                            settings.cluster_threshold if threshold is None or references else threshold,
                            tracks=tracks, reliable=reliable, frame_groups=groups)
    scores.not_face = np.asarray([v is False for v in cols.get("is_face", [None] * len(tracks))], dtype=bool)
    if _EMBEDDER_OF_BACKEND.get(backend, "dlib") == "dlib":
        second_look(ds, cols, scores, tracks, groups, reliable, ref_faces)
    write_fields(ds, cols["id"], {
        "identity_distance": [None if u else float(d) for d, u in zip(scores.distance, scores.unsure)],
        "identity_ok": [None if u else bool(ok) for ok, u in zip(scores.ok, scores.unsure)],
        "identity_cluster": scores.cluster.astype(int).tolist(),
    })
    mine = F("subset") == subset
    # the two cleanup views hold every subset identity was run on: a run on B does not drop A's faces from them
    wrong = ds.match((F("identity_ok") == False) & (F(KEEP_FIELD) != True))  # noqa: E712 - kept faces stay out
    ds.save_view(WRONG_IDENTITY_VIEW, wrong.sort_by([("subset", 1), ("identity_distance", -1)]), overwrite=True)
    unsure = ds.match(F("identity_cluster") == -1)
    ds.save_view(UNSURE_VIEW, unsure.sort_by([("subset", 1), ("track", 1), ("frame", 1)]), overwrite=True)
    saved = [WRONG_IDENTITY_VIEW, UNSURE_VIEW]
    if review:
        ds.save_view("identity_review", ds.match(mine).sort_by(
            [(F("identity_ok") == None, -1), ("identity_distance", -1)]), overwrite=True)  # noqa: E711
        saved.append("identity_review")
    for old in ds.list_saved_views():
        if old.startswith(f"identity: {subset} cluster"):
            ds.delete_saved_view(old)
    for label, count in zip(*np.unique(scores.cluster[scores.cluster >= 0], return_counts=True)):
        if count >= 2 or label == 0:
            vname = f"identity: {subset} cluster {label}"
            ds.save_view(vname, ds.match(mine & (F("identity_cluster") == int(label))), overwrite=True)
            saved.append(vname)
    return scores, saved


def second_look(ds: Any, cols: dict[str, Any], scores: IdentityScores, tracks: np.ndarray, groups: np.ndarray,
                reliable: np.ndarray, ref_faces: list[tuple[Path, Any]] | None) -> None:
    """Decide unsure tracks with the pose-robust descriptor where it can tell (``second_look.py``), in place:
    each such track becomes an identity cluster of its own (kept ones join cluster 0 in dominant mode); with a
    reference, a kept track gives way in frames where a track the first look kept has a face."""
    from curate.ops.identity.second_look import DISTANCE_FIELD, look_again

    _, unit = np.unique(tracks, return_inverse=True)
    not_face = scores.not_face.copy()
    reference = [(str(path), face.embedding, face.landmarks) for path, face in ref_faces] if ref_faces else None
    first_ok = scores.ok.copy()
    identity_faces = np.flatnonzero(first_ok & reliable & (scores.cluster == 0))  # dominant mode's centre
    dist, verdict = look_again(ds, cols, unit, scores.unsure, identity_faces, reference)
    recognised = not_face & (verdict == 1)  # a track the mesh never placed, recognised as the person: a face
    if recognised.any():
        write_fields(ds, [cols["id"][k] for k in np.flatnonzero(recognised)], {"is_face": [True] * int(recognised.sum())})
        scores.not_face &= ~recognised
    verdict[not_face & ~recognised] = -1  # other non-face tracks stay as they were
    looked = ~np.isnan(dist) & (~not_face | recognised)
    if looked.any() or ds.has_sample_field(DISTANCE_FIELD):
        write_fields(ds, cols["id"], {DISTANCE_FIELD: [float(d) if k else None for d, k in zip(dist, looked)]})
    if looked.any():
        ds.info["identity_embedders"] = {"tracks": "dlib", "second_look": "dlib + faceres"}
        ds.save()
    decided = verdict >= 0
    if not decided.any():
        return
    kept = verdict == 1
    if reference:  # a person is in a frame once: the first look's face wins
        taken = set(groups[first_ok])
        kept &= ~np.isin(groups, list(taken))
    scores.second_look = int(decided.sum())
    scores.ok[decided] = kept[decided]
    scores.unsure[decided] = False
    scores.distance[decided] = dist[decided]
    new = scores.cluster.max() + 1 + np.unique(unit[decided], return_inverse=True)[1]
    scores.cluster[decided] = np.where(kept[decided] & (reference is None), 0, new)


def usable_faces(view: Any) -> tuple[Any, dict[str, int]]:
    """The faces gaps, export and dedupe use — not a non-face detection, not unsure, not another person —
    and how many of each were left out."""
    from fiftyone import ViewField as F

    ds = view._root_dataset
    rules = {}
    if ds.has_sample_field("is_face"):
        rules["not faces"] = F("is_face") == False  # noqa: E712
    if ds.has_sample_field("identity_cluster"):
        rules["unsure identity"] = (F("identity_cluster") == -1) & (F("is_face") != False)  # noqa: E712
    if ds.has_sample_field("identity_ok"):
        rules["other people"] = F("identity_ok") == False  # noqa: E712
    left = {name: len(view.match(rule)) for name, rule in rules.items()}
    for rule in rules.values():
        view = view.match(~rule)
    return view, {k: v for k, v in left.items() if v}


def left_out_line(left: dict[str, int]) -> str:
    """'left out: 3 not faces, 12 unsure identity' (empty when nothing was)."""
    return "left out: " + ", ".join(f"{n} {what}" for what, n in left.items()) if left else ""
