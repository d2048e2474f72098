"""The analysis processes of a local extract: each loads the backend's models once and analyses groups of one
source's frames; they die with the command and leave Ctrl-C to it."""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys

import cv2
import numpy as np

from curate.analysis.frame import AnalysisSettings, FrameAnalyzer, FrameResult
from curate.core.device import on_gpu

_WORKER: FrameAnalyzer | None = None


def die_with_parent() -> None:
    """Linux: have the kernel kill this process when its parent dies (a ``kill -9`` of the CLI leaves no
    orphaned workers); elsewhere nothing."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG = 1
        except OSError:  # pragma: no cover - no glibc
            return
        parent = multiprocessing.parent_process()
        if parent is not None and os.getppid() != parent.pid:  # the parent died before prctl took effect
            os._exit(1)


def init_worker(settings: AnalysisSettings) -> None:
    """Process-pool initializer: die with the parent, leave Ctrl-C to it (it stops the pool and keeps what was
    done), load the backend's models once per worker."""
    global _WORKER
    import torch

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)  # one core per worker: the embedding network must not oversubscribe
    _WORKER = FrameAnalyzer(settings)


def run_many_in_worker(source: str, frames: list[tuple[int, np.ndarray]]) -> list[FrameResult]:
    """Process-pool task: analyse a group of one source's frames with this worker's models (one batch a stage)."""
    assert _WORKER is not None, "init_worker was not called"
    return _WORKER.many(source, frames)


GPU_FRAME_GROUP = 8


def frame_group(settings: AnalysisSettings) -> int:
    """Frames a local extract sends to an analysis process at once: GPU_FRAME_GROUP where the models run on a
    GPU (torch sees CUDA and the engine is not forced to OpenCV), else 1 (on the CPU a group gains ~10% and
    holds more frames in memory)."""
    if dict(settings.backend_options).get("engine") == "opencv" or not on_gpu():
        return 1
    return GPU_FRAME_GROUP
