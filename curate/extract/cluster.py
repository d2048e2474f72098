"""Extraction on a Dask distributed cluster: the sources become tasks (images in small groups, videos in frame
ranges, so one long film keeps every worker busy); each task is analysed by a worker and stored by it in the
shared database. A worker that dies has its task run again elsewhere: face keys are unique in the dataset and
every range keeps its own resume marker, so a re-run adds exactly the faces that are missing.

Dask rather than Ray: pure-Python wheels that install offline next to torch and fiftyone, a scheduler and
workers started with two commands (`dask scheduler`, `dask worker ADDRESS`), tasks of a dead worker rescheduled
by the scheduler itself, and the scheduler's dashboard (port 8787) for progress across machines.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.analysis.frame import AnalysisSettings, FrameAnalyzer, FrameResult

ENV_ADDRESS = "DASK_SCHEDULER_ADDRESS"  # dask's own variable for the scheduler's address
RANGE_FRAMES = 256  # analysed frames per video task
IMAGES_PER_TASK = 8
FLUSH_FRAMES = 32
BATCH_FRAMES = 8  # frames analysed together: their faces' embeddings go through the network in one batch
TASK_RETRIES = 2  # a task that raises (e.g. the database briefly gone) runs again; a dead worker's is rescheduled


@dataclass(frozen=True)
class Item:
    """One source of a task: a whole image, or frames [start, stop) of a video (every ``every``-th)."""

    path: str
    source: str  # as stored in the samples' `source` field
    sid: str  # the source's resume marker id
    is_video: bool
    settings: dict[str, Any] = field(hash=False, compare=False)
    start: int = 0
    stop: int = 0  # the container's frame count for a video's last range, read on to the real end
    every: int = 1
    to_end: bool = False
    seek: bool = False  # jump to ``start`` (evenly timed videos) instead of decoding up to it

    @property
    def marker_id(self) -> str:
        """Resume marker of this item: the source's own for an image, the range's for a video."""
        return f"{self.sid}:{self.start}-{'end' if self.to_end else self.stop}/{self.every}" if self.is_video else self.sid


@dataclass(frozen=True)
class Task:
    """What one worker call does: analyse these items into the dataset's subset."""

    dataset: str
    subset: str
    backend: str
    settings: AnalysisSettings
    items: tuple[Item, ...]
    database_uri: str | None = None
    dataset_key: str = ""  # the dataset's name and creation time: a worker on another database refuses the task

    @property
    def frames(self) -> int:
        """How many frames the task analyses (the progress bar's unit)."""
        return sum(_frames(i) for i in self.items)


@dataclass
class ItemResult:
    """What a worker did with one item."""

    sid: str
    frames: int = 0
    faces: int = 0
    found: int = 0  # faces in the item's frames, stored by this or an earlier attempt
    small: int = 0
    error: str | None = None
    frame_errors: list[tuple[str, str]] = field(default_factory=list)
    worker: str = ""


def _frames(item: Item) -> int:
    return math.ceil((item.stop - item.start) / item.every) if item.is_video else 1


def _first_wanted(start: int, every: int) -> int:
    return start + (-start) % every


def split_video(item: Item, frames: int, range_frames: int = RANGE_FRAMES) -> list[Item]:
    """Frame ranges of a video from ``item.start`` to its last frame, ``range_frames`` analysed frames each
    (range bounds are multiples of the step, so the ranges analyse exactly the frames one pass would)."""
    step = max(1, range_frames) * item.every
    first = _first_wanted(item.start, item.every)
    end = max(frames, first + 1)
    bounds = list(range(first, end, step)) + [end]
    pairs = [(a, b) for a, b in zip(bounds, bounds[1:]) if a < b]
    return [Item(item.path, item.source, item.sid, True, item.settings, a, b, item.every, to_end=k == len(pairs) - 1,
                 seek=True) for k, (a, b) in enumerate(pairs)]


def plan_tasks(dataset: str, subset: str, backend: str, settings: AnalysisSettings, items: list[Item],
               database_uri: str | None, images_per_task: int = IMAGES_PER_TASK, dataset_key: str = "") -> list[Task]:
    """Tasks of a run: each video range alone, images in groups."""
    videos = [i for i in items if i.is_video]
    images = [i for i in items if not i.is_video]
    groups = [tuple(images[k:k + images_per_task]) for k in range(0, len(images), images_per_task)]
    return [Task(dataset, subset, backend, settings, items, database_uri, dataset_key)
            for items in [(v,) for v in videos] + groups]


# --- on a worker ---------------------------------------------------------------------------------------------

_ANALYZERS: dict[AnalysisSettings, FrameAnalyzer] = {}


def _analyzer(settings: AnalysisSettings) -> FrameAnalyzer:
    """This worker process's analyser for these settings (models loaded once per process)."""
    if settings not in _ANALYZERS:
        import cv2
        import torch

        # one core per task: a worker runs as many tasks at once as it has threads (`dask worker --nthreads`),
        # so the networks inside a task must not each take every core
        cv2.setNumThreads(1)
        torch.set_num_threads(1)
        _ANALYZERS[settings] = FrameAnalyzer(settings)
    return _ANALYZERS[settings]


def use_database(uri: str | None) -> None:
    """Point this worker at the run's database (its own FIFTYONE_DATABASE_URI wins)."""
    import fiftyone as fo

    if uri and not os.environ.get("FIFTYONE_DATABASE_URI") and fo.config.database_uri != uri:
        fo.config.database_uri = uri


def run_task(task: Task) -> list[ItemResult]:
    """Analyse a task's items and store their faces (worker side; safe to run again after a crash)."""
    use_database(task.database_uri)
    ds = open_task_dataset(task.dataset, task.dataset_key)
    analyze = _analyzer(task.settings)
    return [_run_item(ds, task, item, analyze) for item in task.items]


def open_task_dataset(name: str, key: str = "") -> Any:
    """The run's dataset as a worker sees it; an error naming the fix when the worker is on another database."""
    from curate.dataset import store

    hint = ("this worker's database is not the run's: start workers and the command with the same "
            "FIFTYONE_DATABASE_URI (a MongoDB all machines reach)")
    try:
        ds = store.load_dataset(name)
    except LookupError:
        raise LookupError(f"dataset {name!r} not found: {hint}") from None
    if key and store.dataset_key(ds) != key:
        raise LookupError(f"dataset {name!r} here is another dataset of that name: {hint}")
    return ds


def _worker_name() -> str:
    """The Dask worker running this (its name, else its address), or this process."""
    try:
        from distributed import get_worker

        worker = get_worker()
        return str(worker.name if worker.name is not None and not isinstance(worker.name, int) else worker.address)
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


def _frames_of(item: Item, start: int):
    from curate.core.media import iter_video, load_image

    if item.is_video:
        yield from iter_video(Path(item.path), item.every, start, None if item.to_end else item.stop, item.seek)
    else:
        yield 0, load_image(Path(item.path))


def _run_item(ds: Any, task: Task, item: Item, analyze: FrameAnalyzer) -> ItemResult:
    from curate.core.media import MediaError
    from curate.dataset import store

    result = ItemResult(item.sid, worker=_worker_name())
    marker = store.get_progress(ds, item.marker_id)
    same = marker.get("settings") == item.settings
    if same and marker.get("done"):
        result.found = int(marker.get("found", 0))
        return result
    start = max(item.start, int(marker.get("next_frame", item.start))) if same else item.start
    result.found = int(marker.get("found", 0)) if same else 0
    buffer: list[FrameResult] = []
    next_frame = start

    def flush() -> None:
        rows = [(rec, item.source, res.frame, item.is_video) for res in buffer for rec in res.faces]
        result.faces += store.add_face_records(ds, rows, task.subset, task.backend)
        result.found += len(rows)
        store.set_progress(ds, item.marker_id, {"next_frame": next_frame, "done": False, "settings": item.settings,
                                                "found": result.found})
        buffer.clear()

    def analyse(batch: list[tuple[int, Any]]) -> None:
        nonlocal next_frame
        for res in analyze.many(item.path, batch):
            result.frames += 1
            result.small += res.small
            if res.error:
                result.frame_errors.append((f"{item.path} frame {res.frame}", res.error))
            buffer.append(res)
            next_frame = res.frame + 1
        batch.clear()
        if len(buffer) >= FLUSH_FRAMES:
            flush()

    batch: list[tuple[int, Any]] = []
    try:
        for index, rgb in _frames_of(item, start):
            batch.append((index, rgb))
            if len(batch) >= BATCH_FRAMES:
                analyse(batch)
    except MediaError as exc:
        result.error = str(exc)
    except OSError as exc:
        result.error = f"cannot read file ({exc})"
    if batch:  # the frames read before the end (or before a read error) are kept
        analyse(batch)
    flush()
    if result.error is None:
        store.set_progress(ds, item.marker_id, {"next_frame": next_frame, "done": True, "settings": item.settings,
                                                "found": result.found})
    return result


# --- on the client -------------------------------------------------------------------------------------------

def cluster_address(address: str | None) -> str | None:
    """The scheduler to use: the one given, else dask's DASK_SCHEDULER_ADDRESS, else none (run locally)."""
    return address or os.environ.get(ENV_ADDRESS) or None


def connect(address: str) -> Any:
    """A Dask client of the scheduler at ``address``, or a clear error."""
    from distributed import Client

    try:
        return Client(address, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def run_tasks(client: Any, tasks: list[Any], on_done: Callable[[Any, Any], None],
              fn: Callable[[Any], Any] = None) -> list[tuple[str, str]]:
    """Submit ``fn(task)`` for every task (default: extraction's ``run_task``), call ``on_done(task, result)`` as
    each finishes; returns (where, reason) for each task that failed on every try (the others go on)."""
    from distributed import as_completed

    futures = {client.submit(fn or run_task, t, pure=False, retries=TASK_RETRIES): t for t in tasks}
    failed = []
    try:
        for future in as_completed(futures, loop=client.loop):
            task = futures[future]
            try:
                on_done(task, future.result())
            except Exception as exc:  # a task that failed on every try: the rest go on
                items = getattr(task, "items", None)
                where = ", ".join(sorted({i.path for i in items})) if items else getattr(task, "label", "a task")
                failed.append((where, f"task failed on the cluster ({type(exc).__name__}: {exc})"))
    finally:
        client.cancel(list(futures))
    return failed
