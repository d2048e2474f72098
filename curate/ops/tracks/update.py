"""Give the faces of a dataset their ``shot`` and ``track`` fields (after extraction, or on demand).

Tracks are made over all stored faces of a source at once, so frames skipped by ``--every``, a resumed run
and the frame ranges of ``--cluster`` workers all end in the same tracks as one uninterrupted pass. A
video's cuts are found once (every frame decoded, ``shots.video_cuts``) and kept beside its resume marker,
keyed by the file's fingerprint. An image's face is a track of its own.

``is_face`` is False for every face of a track in which the landmark model never placed a face
(``landmarks_ok`` False throughout): on the labelled videos those are lamps, hands, ears, backs of heads
and blobs; the few real faces among them are full profiles the mesh could not fit either, which no
identity can be decided for (bench/identity_truth.py: detection precision before and after).
"""
from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from curate.analysis.frame import source_id
from curate.dataset import store
from curate.ops.tracks.link import link_tracks
from curate.ops.tracks.shots import METHOD, shot_of, video_cuts

TRACK_GATE = {"mediapipe": 0.6, "dlib": 0.6, "insightface": 1.2}  # embedding distance a link may not exceed


@dataclass
class TrackSummary:
    """What a tracking pass found: videos, shots and tracks (images count one track per face)."""

    videos: int = 0
    shots: int = 0
    tracks: int = 0
    faces: int = 0
    not_faces: int = 0
    uncut: list[str] = field(default_factory=list)  # videos whose cuts could not be read

    def line(self) -> str:
        """One summary line."""
        return (f"tracks: {self.tracks} over {self.faces} faces ({self.shots} shots in {self.videos} videos); "
                f"{self.not_faces} detections in tracks the landmark model never placed: is_face False"
                + (f"; cuts unknown for {len(self.uncut)} unreadable videos" if self.uncut else ""))


def track_id(source_id: str, label: int) -> str:
    """Dataset-wide id of a source's track number."""
    return f"{source_id}-t{label:05d}"


def source_cuts(ds: Any, source: str, progress: bool = True) -> list[int] | None:
    """A video's shot cuts, read once and kept (None when the file cannot be read now)."""
    from curate.core.media import MediaError, fingerprint
    path = Path(source)
    sid = source_id(path)
    try:
        stamp = fingerprint(path)
    except OSError:
        return None
    known = store.get_shots(ds, sid)
    if known.get("fingerprint") == stamp and known.get("method") == METHOD:
        return list(known["cuts"])
    bar = tqdm(desc=f"shots {path.name}", unit="frame", disable=not progress, leave=False, dynamic_ncols=True)
    try:
        cuts, frames = video_cuts(path, on_frame=lambda: bar.update(1))
    except (MediaError, OSError):
        return None
    finally:
        bar.close()
    store.set_shots(ds, sid, {"fingerprint": stamp, "method": METHOD, "cuts": cuts, "frames": frames})
    return cuts


def update_tracks(ds: Any, sources: list[str] | None = None, progress: bool = True,
                  backend: str | None = None) -> TrackSummary:
    """Find shots and link tracks for the faces of ``sources`` (default: every source) and store them."""
    from fiftyone import ViewField as F

    from curate.dataset.store import read_columns, write_fields

    view = ds if sources is None else ds.match(F("source").is_in(sorted(set(sources))))
    cols = read_columns(view, ["source", "source_type", "frame", "bbox", "face_key", "backend", "landmarks_ok"],
                        vector="embedding")
    summary = TrackSummary(faces=len(cols["id"]))
    if not cols["id"]:
        return summary
    gate = TRACK_GATE.get(backend or cols["backend"][0] or "mediapipe", 0.6)
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, src in enumerate(cols["source"]):
        by_source[src].append(i)
    shot_col: list[int] = [0] * len(cols["id"])
    track_col: list[str] = [""] * len(cols["id"])
    for src, idx in by_source.items():
        if cols["source_type"][idx[0]] != "video":
            for i in idx:
                track_col[i] = cols["face_key"][i]
            summary.tracks += len(idx)
            continue
        summary.videos += 1
        cuts = source_cuts(ds, src, progress)
        if cuts is None:
            summary.uncut.append(src)
            tqdm.write(f"faceset: warning: {src}: cannot read the video for its shot cuts; its faces are tracked "
                       "by motion alone", file=sys.stderr)
            cuts = []
        frames = np.asarray([cols["frame"][i] for i in idx])
        boxes = np.asarray([cols["bbox"][i] for i in idx], dtype=np.float64)
        shots = shot_of(frames, cuts)
        labels = link_tracks(frames, boxes, shots, cols["embedding"][idx] if len(cols["embedding"]) else None,
                             max_embed=gate)
        sid = source_id(Path(src))
        for k, i in enumerate(idx):
            shot_col[i] = int(shots[k])
            track_col[i] = track_id(sid, int(labels[k]))
        summary.shots += len(cuts) + 1
        summary.tracks += int(labels.max()) + 1
    is_face = faces_of_landmarked_tracks(track_col, [v is not False for v in cols["landmarks_ok"]])
    summary.not_faces = int((~is_face).sum())
    write_fields(ds, cols["id"], {"shot": shot_col, "track": track_col, "is_face": [bool(v) for v in is_face]})
    return summary


def faces_of_landmarked_tracks(tracks: list[str], landmarks_ok: list[bool]) -> np.ndarray:
    """Per face: whether its track holds at least one face the landmark model placed."""
    _, inverse = np.unique(np.asarray(tracks), return_inverse=True)
    placed = np.bincount(inverse, weights=np.asarray(landmarks_ok, dtype=float)) > 0
    return placed[inverse]


def save_track_view(ds: Any) -> str:
    """Save the view 'tracks': the dataset grouped by track (a FiftyOne dynamic group per track, by frame)."""
    name = "tracks"
    ds.save_view(name, ds.group_by("track", order_by="frame"), overwrite=True)
    return name
