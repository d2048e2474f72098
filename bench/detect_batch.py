"""Face analysis (detect -> mesh/iris -> embedding, no database) frame by frame vs frames batched, per engine.

    .venv/bin/python bench/detect_batch.py [--frames 96] [--out bench/out]

Rows: the mediapipe backend on OpenCV DNN one frame a call (what a local extract worker does: the baseline),
OpenCV with 8 frames a call (``analyze_many``: a cluster worker); where torch sees a GPU, torch on it with 8
and 32 frames a call (what ``--engine auto`` picks there), else torch on the CPU with 1 and 8 frames a call.
One thread for torch and OpenCV, as one Dask worker thread has. The faces found are compared with the
baseline's (count, max landmark difference). Writes bench/out/detect_batch.txt.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(analyzer, frames: list[np.ndarray], batch: int) -> tuple[float, list]:
    """Seconds and faces of analysing the frames ``batch`` at a time (after one warm-up call)."""
    analyzer.analyze_many(frames[:batch])
    started = time.perf_counter()
    found = []
    for k in range(0, len(frames), batch):
        found += analyzer.analyze_many(frames[k:k + batch])
    return time.perf_counter() - started, found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    import cv2
    import torch

    from curate.analysis.registry import create_analyzer
    from curate.core.media import iter_video

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    frames = [rgb for _, rgb in iter_video(ROOT / "datasets" / "samples" / "short_hamilton_clip.mp4")][:args.frames]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    runs = [("opencv, 1 frame a call (baseline)", "opencv", 1), ("opencv, 8 frames a call", "opencv", 8)]
    if gpu:  # engine torch runs on the device torch picks: the GPU
        runs += [(f"torch {gpu}, 8 frames a call", "torch", 8), (f"torch {gpu}, 32 frames a call", "torch", 32)]
    else:
        runs += [("torch cpu, 1 frame a call", "torch", 1), ("torch cpu, 8 frames a call", "torch", 8)]
    rows, base, base_faces = [], None, None
    for label, engine, batch in runs:
        analyzer = create_analyzer("mediapipe", engine=engine)
        seconds, found = run(analyzer, frames, batch)
        faces = [f for frame in found for f in frame]
        if base is None:
            base, base_faces = seconds, faces
        diff = max((float(np.abs(a.landmarks - b.landmarks).max()) for a, b in zip(faces, base_faces)), default=0.0)
        rows.append((label, seconds, len(frames) / seconds, base / seconds, len(faces), diff))
    lines = [f"mediapipe analysis of {len(frames)} frames of the sample clip (detect, mesh + iris, dlib embedding; "
             f"no database), one thread; {os.cpu_count()} CPU cores, GPU: {gpu or 'none on this machine'}", "",
             f"{'run':<42} {'seconds':>8} {'frames/s':>9} {'vs baseline':>12} {'faces':>6} {'max landmark diff px':>21}"]
    lines += [f"{label:<42} {s:>8.2f} {fps:>9.2f} {ratio:>11.2f}x {n:>6} {d:>21.4f}" for label, s, fps, ratio, n, d in rows]
    if not gpu:
        lines += ["", "No GPU here: the GPU rows (torch on the device, 8 and 32 frames a call) appear where torch sees one."]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detect_batch.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
