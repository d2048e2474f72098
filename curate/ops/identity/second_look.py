"""A second look at the tracks the identity embedding cannot judge: turned-only tracks and turned still faces.

dlib's network (the stored ``embedding``) is trusted only up to the embedder's ``reliable_yaw``; a track with
no face that frontal is unsure. Those tracks get a second, pose-robust descriptor: dlib's vector fused with
Human's ``faceres`` (VGGFace2-trained, ``curate/data/human``), each scaled by its all-pairs equal-error
distance — frontal-vs-60-90°-turned AUC 0.990 on CMU faces against dlib's 0.975 (bench/out/embedder_auc.txt).
faceres is computed only for these faces (from their source frames) and for the identity's own faces (the
reference images, or a sample of the dominant cluster), so extraction does not pay for it. A track is kept
when its fused mean lies within ``ACCEPT`` of the identity's, another person beyond ``REJECT``, and stays
unsure between (CMU faces, each person's straight photos as reference: precision 0.99 at ``ACCEPT``, no own
turned face beyond ``REJECT``; a single frontal reference photo puts a person's own profile in a video frame
as far as 0.97, so the rejection is kept well clear of the acceptance). The descriptor is stored per face (``SECOND_FIELD``) so a re-run reads no frame again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from curate.analysis.backends.human.embedders import FaceResEmbedder
from curate.ops.identity.cluster import normalise_rows

SECOND_FIELD = "embedding_faceres"
DISTANCE_FIELD = "identity_second_look"  # the fused distance of every track given a second look
DLIB_SCALE, FACERES_SCALE = 0.451, 1.042  # each embedder's all-pairs EER distance on CMU faces
ACCEPT, REJECT = 0.80, 1.00
CENTRE_FACES = 60  # the dominant cluster's faces embedded for its second-look centre
PER_UNIT = 5  # faces embedded per unsure track (spread over it)


def fuse(dlib: np.ndarray, faceres: np.ndarray) -> np.ndarray:
    """Rows [dlib / its EER distance, faceres / its EER distance] / sqrt(2): one distance scale for both."""
    return np.hstack([normalise_rows(dlib) / DLIB_SCALE, normalise_rows(faceres) / FACERES_SCALE]) / np.sqrt(2)


def fused_centre(dlib: np.ndarray, faceres: np.ndarray) -> np.ndarray:
    """The fused vector of a set of faces' mean dlib and mean faceres vectors."""
    return fuse(normalise_rows(dlib).mean(axis=0, keepdims=True), normalise_rows(faceres).mean(axis=0, keepdims=True))[0]


@dataclass
class SecondLook:
    """The fused centre of the identity and the faces (indices into the scored faces) with a faceres vector."""

    centre: np.ndarray
    faces: np.ndarray
    faceres: np.ndarray


def spread_sample(members: np.ndarray, count: int) -> np.ndarray:
    """At most ``count`` of ``members`` (indices), evenly spread over them."""
    members = np.asarray(members)
    if len(members) <= count:
        return members
    return members[np.linspace(0, len(members) - 1, count).round().astype(int)]


def faces_to_look_at(unit: np.ndarray, unsure: np.ndarray, per_unit: int = PER_UNIT) -> np.ndarray:
    """Indices of the faces given a second look: up to ``per_unit`` faces of each unsure track, spread over it."""
    picked = [spread_sample(np.flatnonzero(unit == u), per_unit) for u in np.unique(unit[unsure])]
    return np.concatenate(picked).astype(np.int64) if picked else np.zeros(0, dtype=np.int64)


def decide_unsure(unit: np.ndarray, unsure: np.ndarray, dlib: np.ndarray, look: SecondLook,
                  accept: float = ACCEPT, reject: float = REJECT) -> tuple[np.ndarray, np.ndarray]:
    """(distance, verdict) per face from the second look: the fused mean of each unsure track's looked-at faces
    against the identity's fused centre (NaN where not looked at); verdict 1 kept, 0 another person, -1 unsure."""
    dist = np.full(len(unit), np.nan)
    verdict = np.full(len(unit), -1, dtype=np.int64)
    if not len(look.faces):
        return dist, verdict
    looked_units = unit[look.faces]
    for u in np.unique(looked_units):
        rows = looked_units == u
        d = float(np.linalg.norm(fused_centre(dlib[look.faces[rows]], look.faceres[rows]) - look.centre))
        members = (unit == u) & unsure
        dist[members] = d
        verdict[members] = 1 if d <= accept else 0 if d > reject else -1
    return dist, verdict


def frame_faceres(faces: list[tuple[str, int, bool, np.ndarray]], embedder: Any = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(faceres vectors, read ok) of faces given as (source, frame, is_video, 68 source landmarks), read from
    their source frames in (source, frame) order; a face whose source cannot be read gets a zero row."""
    from curate.core.media import SourceFrames

    embedder = embedder or FaceResEmbedder()
    out = np.zeros((len(faces), embedder.embedding_size), np.float32)
    ok = np.zeros(len(faces), dtype=bool)
    frames = SourceFrames(seek=True)
    for i in sorted(range(len(faces)), key=lambda k: (faces[k][0], faces[k][1])):
        source, frame, is_video, pts = faces[i]
        rgb = frames.get(source, int(frame), is_video)
        if rgb is not None:
            out[i] = embedder.embed(rgb, np.asarray(pts, dtype=np.float64))
            ok[i] = True
    return out, ok


def stored_faceres(dataset: Any, ids: list[str], faces: list[tuple[str, int, bool, np.ndarray]]) -> np.ndarray:
    """The faceres vectors of these faces: stored ones read, the others computed from their source frames and
    stored (a face whose source cannot be read gets a zero row, not stored)."""
    out = np.zeros((len(ids), 1024), np.float32)
    if not ids:
        return out
    have = {}
    if dataset.has_sample_field(SECOND_FIELD):
        have = {i: v for i, v in zip(*dataset.select(ids).values(["id", SECOND_FIELD])) if v is not None}
    todo = [k for k, i in enumerate(ids) if i not in have]
    for k, i in enumerate(ids):
        if i in have:
            out[k] = np.asarray(have[i], np.float32)
    if todo:
        vecs, ok = frame_faceres([faces[k] for k in todo])
        out[todo] = vecs
        new = {ids[k]: vecs[j] for j, k in enumerate(todo) if ok[j]}
        if new:
            dataset.set_values(SECOND_FIELD, new, key_field="id")
    return out


def look_again(dataset: Any, cols: dict[str, Any], unit: np.ndarray, unsure: np.ndarray, identity_faces: np.ndarray,
               reference: list[tuple[str, np.ndarray, np.ndarray]] | None) -> tuple[np.ndarray, np.ndarray]:
    """``decide_unsure`` for a subset's faces (``cols``: read_columns with source, source_type, frame,
    source_landmarks and the ``embedding`` vectors): the identity's centre from the ``reference`` faces
    ((image, dlib vector, 68 landmarks) each) or else from a sample of ``identity_faces`` (indices)."""
    look = faces_to_look_at(unit, unsure)
    undecided = np.full(len(unit), np.nan), np.full(len(unit), -1, dtype=np.int64)
    if not len(look) or (not reference and not len(identity_faces)):
        return undecided

    def frame_faces(idx: np.ndarray) -> list[tuple[str, int, bool, np.ndarray]]:
        return [(cols["source"][k], int(cols["frame"][k]), cols["source_type"][k] == "video",
                 np.asarray(cols["source_landmarks"][k], float)) for k in idx]

    if reference:
        faceres, _ = frame_faceres([(str(path), 0, False, pts) for path, _, pts in reference])
        centre = fused_centre(np.stack([vec for _, vec, _ in reference]), faceres)
    else:
        sample = spread_sample(np.asarray(identity_faces), CENTRE_FACES)
        faceres = stored_faceres(dataset, [cols["id"][k] for k in sample], frame_faces(sample))
        read = np.linalg.norm(faceres, axis=1) > 0
        if not read.any():
            return undecided
        centre = fused_centre(cols["embedding"][sample[read]], faceres[read])
    faceres = stored_faceres(dataset, [cols["id"][k] for k in look], frame_faces(look))
    read = np.linalg.norm(faceres, axis=1) > 0
    return decide_unsure(unit, unsure, cols["embedding"], SecondLook(centre, look[read], faceres[read]))
