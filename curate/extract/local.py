"""`faceset extract`: sources -> faces -> samples of a FiftyOne dataset; parallel, streamed, resumable."""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from curate.analysis.frame import (
    AnalysisSettings,
    FrameAnalyzer,
    FrameResult,
    source_id,
)
from curate.analysis.registry import DEFAULT_BACKEND, check_backend
from curate.core.align import DEFAULT_COVERAGE, DEFAULT_SIZE
from curate.core.expression import ExpressionThresholds
from curate.core.media import (
    MediaError,
    Source,
    fingerprint,
    iter_video,
    list_sources,
    load_image,
    printable,
    probe_video,
    report_error,
)
from curate.dataset import store
from curate.dataset.subsets import check_subset
from curate.extract.cluster import RANGE_FRAMES
from curate.extract.workers import frame_group, init_worker, run_many_in_worker

FLUSH_FRAMES = 32


@dataclass
class ExtractSummary:
    """What a run did: files, frames and faces, and every skipped file with its reason."""

    files: int = 0
    files_read: int = 0
    files_resumed: int = 0
    frames: int = 0
    faces: int = 0
    faces_too_small: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    workers: dict[str, int] = field(default_factory=dict)  # on a cluster: the parts each worker ran
    tracks: str = ""  # the tracking pass's summary line
    notes: list[str] = field(default_factory=list)  # what the run did that the user did not spell out
    interrupted: bool = False  # stopped by Ctrl-C: faces of the frames analysed so far are stored

    @property
    def ok(self) -> bool:
        """True unless nothing at all could be processed."""
        return self.files_read + self.files_resumed > 0

    def lines(self) -> list[str]:
        """Human summary."""
        out = [
            f"files: {self.files} ({self.files_read} read, {self.files_resumed} already done, {len(self.skipped)} skipped)",
            f"frames analysed: {self.frames}",
            f"faces added: {self.faces}" + (f" ({self.faces_too_small} smaller than --min-size left out)" if self.faces_too_small else ""),
        ]
        if self.workers:
            out.append(f"cluster workers: {len(self.workers)} (" + ", ".join(f"{w}: {n} parts" for w, n in sorted(self.workers.items())) + ")")
        if self.tracks:
            out.append(self.tracks)
        out += self.notes
        reasons = Counter(reason.split(" (")[0] for _, reason in self.skipped)
        out += [f"skipped, {reason}: {n}" for reason, n in reasons.most_common()]
        return out


def folder_notes(sources: list[str | Path], found: list[Any]) -> list[str]:
    """One line per folder given: how many images and videos were found inside it."""
    notes = []
    for folder in (Path(s).absolute() for s in sources if Path(s).is_dir()):
        inside = [src for src in found if folder in src.path.parents]
        videos = sum(src.is_video for src in inside)
        notes.append(f"folder {printable(folder)}: {len(inside) - videos} images and {videos} videos inside it")
    return notes


def other_subset_notes(ds: Any, found: list[Any], subset: str, dataset: str) -> list[str]:
    """A line when sources of this run already have faces in the other subset: they are not stored twice."""
    from fiftyone import ViewField as F

    paths = [printable(src.path) for src in found]
    elsewhere = ds.match(F("source").is_in(paths) & (F("subset") != subset)).distinct("source") if paths else []
    if not elsewhere:
        return []
    other = "B" if subset == "A" else "A"
    return [f"{len(elsewhere)} source(s) already have their faces in subset {other}, not {subset}: they stay there "
            f"(a face is stored once); move them with: faceset move {dataset} -s {subset} --source FILE"]


def _done_future(value: Any) -> Future:
    fut: Future = Future()
    fut.set_result(value)
    return fut


class _SourceState:
    def __init__(self, src: Source, sid: str, settings: dict[str, Any]):
        self.src, self.sid, self.settings = src, sid, settings
        self.faces = 0
        self.frames = 0
        self.last_frame = -1
        self.fingerprint = ""
        self.todo = 0
        self.total_frames = 1  # a video's frame count as its container reports it

    def marker(self, done: bool) -> dict[str, Any]:
        """The resume marker of this source as far as it has been read."""
        return {"next_frame": self.last_frame + 1, "done": done, "settings": self.settings,
                "fingerprint": self.fingerprint}


def extract(
    sources: list[str | Path],
    dataset: str,
    subset: str = "A",
    every: int = 1,
    min_size: int = 0,
    backend: str = DEFAULT_BACKEND,
    backend_options: dict[str, Any] | None = None,
    workers: int | None = None,
    size: int = DEFAULT_SIZE,
    coverage: float = DEFAULT_COVERAGE,
    thresholds: ExpressionThresholds | None = None,
    media_dir: str | Path | None = None,
    progress: bool = True,
    on_error: Callable[[Path | str, str], None] = report_error,
    cluster: str | None = None,
    range_frames: int = RANGE_FRAMES,
    frame_group_size: int | None = None,
) -> ExtractSummary:
    """Extract every face of the sources into the dataset's subset; re-running resumes.

    Frames go to the analysis processes one at a time, or in groups of ``frame_group_size`` (default:
    :func:`curate.extract.workers.frame_group` — 8 where the models run on a GPU, which takes a group in one batch).

    ``cluster``: a Dask scheduler's address (else $DASK_SCHEDULER_ADDRESS): the work is spread over its
    workers, videos split into ranges of ``range_frames`` analysed frames; none: this machine's processes.
    """
    from curate.extract.cluster import cluster_address, connect

    check_subset(subset)
    if every < 1:
        raise ValueError("--every must be at least 1")
    workers = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))
    check_backend(backend, **(backend_options or {}))  # missing models: one error before any work
    address = cluster_address(cluster)
    client = connect(address) if address else None  # an unreachable scheduler: one error before any work
    created = not store.dataset_exists(dataset)
    ds = store.open_dataset(dataset, media_dir)
    settings = AnalysisSettings(
        backend=backend,
        backend_options=tuple(sorted((backend_options or {}).items())),
        size=size,
        coverage=coverage,
        min_size=min_size,
        thresholds=thresholds or ExpressionThresholds(),
        crops_dir=str(store.media_dir(ds)),
    )
    # what decides which faces a source yields (the face keys do not depend on the subset)
    run_settings = {"min_size": min_size, "backend": backend, "size": size, "coverage": coverage}
    summary = ExtractSummary()
    found, missing = list_sources(sources)
    summary.files = len(found) + len(missing)
    summary.notes += folder_notes(sources, found)
    for path, reason in missing:
        summary.skipped.append((str(path), reason))
        on_error(path, reason)

    plan: list[tuple[_SourceState, int, int]] = []  # state, start frame, frames to do
    for src in found:
        state = _SourceState(src, source_id(src.path), {**run_settings, "every": every} if src.is_video else run_settings)
        marker = store.get_progress(ds, state.sid)
        try:
            state.fingerprint = fingerprint(src.path)
        except OSError:
            state.fingerprint = ""
        changed = marker.get("fingerprint", state.fingerprint) != state.fingerprint  # (older markers have none)
        if changed:
            tqdm.write(f"faceset: {printable(src.path)} changed since it was extracted: reading it again",
                       file=sys.stderr)
        same = marker.get("settings") == state.settings and not changed
        if same and marker.get("done"):
            summary.files_resumed += 1
            continue
        start = int(marker.get("next_frame", 0)) if same else 0
        todo = 1
        if src.is_video:
            try:
                info = probe_video(src.path)
            except (MediaError, OSError) as exc:
                summary.skipped.append((str(src.path), str(exc)))
                on_error(src.path, str(exc))
                continue
            todo = max(0, math.ceil((max(info.frames, 1) - start) / every))
            state.total_frames = max(info.frames, 1)
        state.todo = todo
        plan.append((state, start, todo))
    if not created:
        summary.notes += other_subset_notes(ds, found, subset, dataset)

    bar = tqdm(total=sum(t for _, _, t in plan), unit="frame", desc=f"extract {subset}", disable=not progress, dynamic_ncols=True)
    if client is not None:
        try:
            _extract_on_cluster(client, ds, plan, settings, subset, backend, every, range_frames, summary, on_error, bar)
        finally:
            bar.close()
            client.close()
        _drop_if_empty(created, dataset, ds, summary, plan)
        _track(ds, plan, summary, progress)
        return summary
    buffer: list[tuple[_SourceState, FrameResult]] = []

    def flush() -> None:
        if not buffer:
            return
        rows = [(rec, printable(state.src.path), res.frame, state.src.is_video) for state, res in buffer for rec in res.faces]
        summary.faces += store.add_face_records(ds, rows, subset, backend)
        for state in {state.sid: state for state, _ in buffer}.values():
            store.set_progress(ds, state.sid, state.marker(done=False))
        buffer.clear()

    def finish(state: _SourceState, error: str | None) -> None:
        flush()
        bar.update(max(0, state.todo - state.frames))  # a file that ended early: the bar still reaches its end
        if error:
            summary.skipped.append((str(state.src.path), error))
            on_error(state.src.path, error)
            if state.frames == 0:
                return
        else:
            summary.files_read += 1
            if state.faces == 0:
                reason = "no face found" + (f" in {state.frames} frames" if state.src.is_video else "")
                summary.skipped.append((str(state.src.path), reason))
                on_error(state.src.path, reason)
        store.set_progress(ds, state.sid, state.marker(done=error is None))

    def consume(item: tuple) -> None:
        if item[0] == "end":
            finish(item[1], item[2])
            return
        _, state, fut = item
        for res in fut.result():
            bar.update(1)
            state.frames += 1
            summary.frames += 1
            state.last_frame = res.frame
            if res.error:
                on_error(f"{state.src.path} frame {res.frame}", res.error)
            state.faces += len(res.faces)
            summary.faces_too_small += res.small
            buffer.append((state, res))
            if len(buffer) >= FLUSH_FRAMES:
                flush()

    def produce() -> Iterator[tuple]:
        """("frames", state, [(index, rgb), ...]) groups of up to ``group`` frames of one source, then
        ("end", state, error or None) per source."""
        for state, start, _ in plan:
            frames: list[tuple[int, np.ndarray]] = []
            try:
                if state.src.is_video:
                    for index, rgb in iter_video(state.src.path, every, start):
                        frames.append((index, rgb))
                        if len(frames) >= group:
                            yield ("frames", state, frames)
                            frames = []
                else:
                    frames.append((0, load_image(state.src.path)))
                if frames:
                    yield ("frames", state, frames)
                yield ("end", state, None)
            except MediaError as exc:
                if frames:  # what was decoded before the error is analysed and kept
                    yield ("frames", state, frames)
                yield ("end", state, str(exc))
            except OSError as exc:
                yield ("end", state, f"cannot read file ({exc})")

    before = _stored_faces(ds, plan)
    pool = None
    local: FrameAnalyzer | None = None
    if workers > 1 and plan:
        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=init_worker, initargs=(settings,))
    elif plan:
        local = FrameAnalyzer(settings)
    pending: deque = deque()
    group = frame_group(settings) if frame_group_size is None else frame_group_size
    max_inflight = 3 * workers if group == 1 else workers + 1  # groups in flight (frames held: x group)
    try:
        for item in produce():
            if item[0] == "frames":
                _, state, frames = item
                src = str(state.src.path)
                fut = pool.submit(run_many_in_worker, src, frames) if pool else _done_future(local.many(src, frames))
                pending.append(("frames", state, fut))
            else:
                pending.append(item)
            while sum(1 for p in pending if p[0] == "frames") >= max_inflight:
                consume(pending.popleft())
        while pending:
            consume(pending.popleft())
    except KeyboardInterrupt:  # Ctrl-C: what finished is stored below, the run says so and can be resumed
        summary.interrupted = True
    finally:
        flush_error = None
        try:
            flush()  # whatever finished before an interruption is kept
        except Exception as exc:  # pragma: no cover - database gone
            flush_error = exc
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        if flush_error:
            raise flush_error
    if summary.interrupted:  # Ctrl-C may have come between a write and its count: the store says
        summary.faces = _stored_faces(ds, plan) - before
    _drop_if_empty(created, dataset, ds, summary, plan)
    if not summary.interrupted:  # a resumed run links the tracks over all of a source's faces
        _track(ds, plan, summary, progress)
    return summary


def _stored_faces(ds: Any, plan: list[tuple[_SourceState, int, int]]) -> int:
    """Faces stored of the sources in a plan."""
    from fiftyone import ViewField as F

    return len(ds.match(F("source").is_in([printable(state.src.path) for state, _, _ in plan]))) if plan else 0


def _track(ds: Any, plan: list[tuple[_SourceState, int, int]], summary: ExtractSummary, progress: bool) -> None:
    """Shots, tracks and is_face for the sources this run read (over all their stored faces)."""
    from curate.ops.tracks.update import save_track_view, update_tracks

    touched = [printable(state.src.path) for state, _, _ in plan if state.frames]
    if touched and store.dataset_exists(ds.name):
        summary.tracks = update_tracks(ds, touched, progress=progress).line()
        save_track_view(ds)


def _drop_if_empty(created: bool, dataset: str, ds: Any, summary: ExtractSummary, plan: list) -> None:
    """A first run that found nothing leaves no empty dataset behind (unless another process has begun
    writing into it: its markers say so)."""
    if created and summary.faces == 0 and not len(ds) and not store.has_markers(ds, besides={s.sid for s, _, _ in plan}):
        store.delete_dataset(dataset)


def _extract_on_cluster(client: Any, ds: Any, plan: list[tuple[_SourceState, int, int]], settings: AnalysisSettings,
                        subset: str, backend: str, every: int, range_frames: int, summary: ExtractSummary,
                        on_error: Callable[[Path | str, str], None], bar: tqdm) -> None:
    """Run the plan as Dask tasks (workers store the faces); mark each source done once all its parts are."""
    import fiftyone as fo

    from curate.core.media import evenly_timed
    from curate.extract.cluster import Item, plan_tasks, run_tasks, split_video

    if not fo.config.database_uri:
        tqdm.write("faceset: warning: no FIFTYONE_DATABASE_URI: only workers on this machine reach its embedded "
                   "database (workers elsewhere refuse the tasks; see docs/cluster.md)", file=sys.stderr)
    items: list[Item] = []
    for state, start, _ in plan:
        whole = Item(str(state.src.path), printable(state.src.path), state.sid, state.src.is_video, state.settings,
                     start, state.total_frames, every, to_end=True)
        if state.src.is_video and evenly_timed(state.src.path):
            items += split_video(whole, state.total_frames, range_frames)
        else:
            if state.src.is_video and state.todo > range_frames:
                tqdm.write(f"faceset: {printable(state.src.path)}: frames not evenly timed, so one worker reads it "
                           "whole (a frame number is not one exact seek point)", file=sys.stderr)
            items.append(whole)
    tasks = plan_tasks(ds.name, subset, backend, settings, items, fo.config.database_uri,
                       dataset_key=store.dataset_key(ds))
    states = {state.sid: state for state, _, _ in plan}
    parts = Counter(i.sid for i in items)
    found: Counter = Counter()
    errors: dict[str, str] = {}
    workers: Counter = Counter()

    def done(task: Any, results: list[Any]) -> None:
        bar.update(task.frames)
        for res in results:
            summary.frames += res.frames
            summary.faces += res.faces
            summary.faces_too_small += res.small
            states[res.sid].frames += res.frames
            found[res.sid] += res.found
            workers[res.worker] += 1
            parts[res.sid] -= 1
            for where, reason in res.frame_errors:
                on_error(where, reason)
            if res.error and res.sid not in errors:
                errors[res.sid] = res.error

    for where, reason in run_tasks(client, tasks, done):
        tqdm.write(f"faceset: {where}: {reason}", file=sys.stderr)
        summary.skipped.append((where, "task failed on the cluster"))
    for sid, state in states.items():
        if sid in errors:
            summary.skipped.append((str(state.src.path), errors[sid]))
            on_error(state.src.path, errors[sid])
            continue
        if parts[sid] > 0:  # a part failed on every try (reported above): the source stays to do
            continue
        summary.files_read += 1
        if found[sid] == 0:
            reason = "no face found" + (f" in {state.frames} frames" if state.src.is_video else "")
            summary.skipped.append((str(state.src.path), reason))
            on_error(state.src.path, reason)
        state.last_frame = state.total_frames - 1
        store.set_progress(ds, sid, state.marker(done=True))
    summary.workers = dict(workers)
    ds.reload()  # the workers added the samples (and their fields) through their own connections


