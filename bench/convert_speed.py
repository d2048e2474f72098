"""Conversion speed and memory on the sample clip (640x360, 275 frames), same run, same machine:

- baseline: finding + aligning the faces alone (decode, detector on key frames / every frame, landmarks,
  aligned crops at the model size) — what conversion cannot avoid;
- conversion: the same plus the model, colour transfer, mask, paste-back and H.264 encoding (+ audio copy);
  for 64 and 128 px models of the default widths (weights random: the cost does not depend on training).

The overhead ratio is baseline frames/s over conversion frames/s. Memory: peak RSS while converting the clip
once and the clip looped 4 times (1100 frames): flat means it does not grow with video length.

    .venv/bin/python bench/convert_speed.py [--loops 4] [--backend mediapipe|dlib]
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "datasets" / "samples" / "short_hamilton_clip.mp4"
_TMP = Path(tempfile.mkdtemp(prefix="faceset-convert-bench-"))


def make_model(size: int, backend: str) -> Path:
    """A model folder with a checkpoint of the default architecture at ``size`` (random weights)."""
    import json

    import torch

    from train.checkpoint import save_checkpoint
    from train.config import ModelConfig
    from train.model import FaceSwapModel

    d = _TMP / f"model{size}-{backend}"
    torch.manual_seed(0)
    config = ModelConfig(size=size)
    model = FaceSwapModel(config)
    save_checkpoint(d, model, torch.optim.Adam(model.parameters()), 0, config.to_dict(), {"seed": 0}, 1)
    (d / "model.json").write_text(json.dumps({**config.to_dict(), "alignment": {"coverage": 0.75, "backend": backend}}))
    return d


class PeakRSS:
    """Samples this process's resident memory every 50 ms while in the block (the ffmpeg encoder is not counted)."""

    def __enter__(self) -> PeakRSS:  # noqa: PYI034
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, me.memory_info().rss)
            self._stop.wait(0.05)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def find_and_align(analyzer, path: Path, detect_every: int, size: int) -> tuple[int, float]:
    """Baseline: decode every frame, find the faces, cut the aligned crops. Returns (frames, seconds)."""
    from convert.faces import FaceFinder
    from convert.frames import read_frames
    from curate.core.align import alignment_matrix, warp_face
    from curate.core.media import probe_video

    finder = FaceFinder(analyzer, detect_every)
    frames, t = 0, time.perf_counter()
    for _, rgb in read_frames(path, probe_video(path).frames):
        for face in finder(rgb):
            warp_face(rgb, alignment_matrix(face.landmarks, size, 0.75), size)
        frames += 1
    return frames, time.perf_counter() - t


def run_convert(analyzer, model: Path, path: Path, detect_every: int, out: Path) -> tuple[int, float]:
    """Full conversion of one video to MP4. Returns (frames, seconds)."""
    from convert.faces import FaceFinder
    from convert.pipeline import (
        ConvertSettings,
        ConvertSummary,
        FrameConverter,
        convert_video,
    )
    from convert.swapper import Swapper

    settings = ConvertSettings(every_frame_detect=detect_every == 1, detect_every=detect_every)
    converter = FrameConverter(Swapper(model), FaceFinder(analyzer, detect_every), settings)
    summary = ConvertSummary()
    out.unlink(missing_ok=True)
    t = time.perf_counter()
    convert_video(path, out, converter, settings, summary, progress=False, problem=lambda p, r: print(f"  {p}: {r}"))
    return summary.frames, time.perf_counter() - t


def looped(path: Path, loops: int) -> Path:
    """The clip repeated ``loops`` times (stream copy)."""
    from convert.frames import ffmpeg_exe

    out = _TMP / f"looped{loops}.mp4"
    subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-stream_loop", str(loops - 1), "-i", str(path), "-c", "copy", str(out)], check=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loops", type=int, default=4)
    ap.add_argument("--backend", default="mediapipe", help="the backend the model's faces were extracted with")
    args = ap.parse_args()
    from curate.analysis.registry import create_analyzer

    analyzer = create_analyzer(args.backend)
    models = {64: make_model(64, args.backend), 128: make_model(128, args.backend)}
    print(f"input: {CLIP.name}, 640x360, backend {args.backend}, 2 CPU cores\n")
    print(f"{'detector runs':<22} {'model':>6} {'find+align fps':>15} {'convert fps':>12} {'overhead':>9}")
    for every, label in ((5, "every 5th frame"), (1, "every frame")):
        n, secs = find_and_align(analyzer, CLIP, every, 64)
        base = n / secs
        for size, model in models.items():
            m, csecs = run_convert(analyzer, model, CLIP, every, _TMP / f"out{size}_{every}.mp4")
            assert m == n
            print(f"{label:<22} {size:>4}px {base:>15.1f} {m / csecs:>12.1f} {base / (m / csecs):>8.2f}x")
    print("overhead = find+align fps / convert fps (model, colour, mask, paste-back, H.264 encode); target >= 5 fps\n")

    long = looped(CLIP, args.loops)
    print(f"{'frames':>7} {'peak RSS MiB':>13} {'seconds':>8}")
    for path in (CLIP, long):
        with PeakRSS() as rss:
            frames, secs = run_convert(analyzer, models[64], path, 5, _TMP / "mem.mp4")
        print(f"{frames:>7} {rss.peak / 2**20:>13.0f} {secs:>8.1f}")
    print("memory flat in video length = peak RSS of the long run within a few MiB of the short one")


if __name__ == "__main__":
    main()
