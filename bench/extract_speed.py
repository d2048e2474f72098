"""Extraction speed and memory per backend: full faceset analysis vs a bare dlib loop, in the same run.

    .venv/bin/python bench/extract_speed.py [--every N] [--out bench/out/extract_speed.txt]

Each configuration runs in a fresh process so its peak RSS is its own. The baseline is the plain
single-process loop a user would write: decode -> dlib HOG detect -> 68 landmarks -> 128-d embedding
(dlib's own compute_face_descriptor). The full runs (`faceset extract` with each backend) add alignment,
crops, pose, blur, brightness, expression and the FiftyOne writes, on 2 worker processes. Faces found and
frames/s are given as ratios to the baseline (the mediapipe target: >= 2x the faces at >= 4x the frames/s).
Memory: the default backend on the clip and on a 4x longer copy of it (peak must stay flat).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import emit  # bench/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "datasets" / "samples" / "short_hamilton_clip.mp4"


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) / 1024.0


def run_baseline(video: Path, every: int) -> dict:
    import cv2
    import dlib
    import face_recognition_models as frm

    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(frm.pose_predictor_model_location())
    rec = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    cap = cv2.VideoCapture(str(video))
    frames = faces = index = 0
    start = time.perf_counter()
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if index % every == 0:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            for rect in det(rgb, 1):
                shape = sp(rgb, rect)
                rec.compute_face_descriptor(rgb, shape)
                faces += 1
            frames += 1
        index += 1
    return {"frames": frames, "faces": faces, "seconds": time.perf_counter() - start}


def run_bare(video: Path, every: int, backend: str, embed: bool) -> dict:
    """A single-process loop over the backend's stages (faceset's own code, no crops, no database)."""
    from curate.analysis.registry import create_analyzer
    from curate.core.media import iter_video

    analyzer = create_analyzer(backend)
    frames = faces = 0
    start = time.perf_counter()
    for _, rgb in iter_video(video, every):
        for det in analyzer.detector.detect(rgb):
            found = analyzer.locate(rgb, det)
            if embed:
                analyzer.embedder.embed(rgb, found.landmarks)
            faces += 1
        frames += 1
    return {"frames": frames, "faces": faces, "seconds": time.perf_counter() - start}


def run_full(video: Path, every: int, backend: str = "mediapipe") -> dict:
    os.environ["FIFTYONE_DATABASE_DIR"] = os.environ.get("BENCH_DB_DIR", tempfile.mkdtemp())
    os.environ["FIFTYONE_DEFAULT_DATASET_DIR"] = tempfile.mkdtemp(prefix="bench-media-")
    import fiftyone as fo

    from curate.extract.local import extract
    from curate.dataset.store import open_dataset

    name = f"bench-extract-{os.getpid()}"
    open_dataset(name)  # database up before the clock starts
    start = time.perf_counter()
    summary = extract([video], name, "A", every=every, backend=backend, workers=2, progress=False)
    seconds = time.perf_counter() - start
    fo.delete_dataset(name)
    return {"frames": summary.frames, "faces": summary.faces, "seconds": seconds}


def _child(kind: str, video: Path, every: int, backend: str = "mediapipe") -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--video", str(video), "--every", str(every),
                          "--backend", backend], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _long_copy(video: Path, times: int, folder: Path) -> Path:
    import cv2

    out = folder / f"clip_x{times}.mp4"
    cap = cv2.VideoCapture(str(video))
    fps, w, h = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for _ in range(times):
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            writer.write(frame)
    writer.release()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--child")
    parser.add_argument("--video", default=str(CLIP))
    parser.add_argument("--backend", default="mediapipe")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "extract_speed.txt")
    args = parser.parse_args()
    if args.child:
        if args.child == "baseline":
            result = run_baseline(Path(args.video), args.every)
        elif args.child.startswith("bare"):
            result = run_bare(Path(args.video), args.every, args.backend, embed=args.child == "bare-embed")
        else:
            result = run_full(Path(args.video), args.every, args.backend)
        result["peak_mb"] = _peak_mb()
        print(json.dumps(result))
        return

    os.environ["BENCH_DB_DIR"] = tempfile.mkdtemp(prefix="bench-db-")
    rows = [("bare dlib loop (1 process)", _child("baseline", CLIP, args.every)),
            ("  dlib stages, detect+landmarks only", _child("bare", CLIP, args.every, "dlib")),
            ("  mediapipe stages, detect+mesh+iris only", _child("bare", CLIP, args.every, "mediapipe")),
            ("  mediapipe stages + embedding (1 process)", _child("bare-embed", CLIP, args.every, "mediapipe")),
            ("extract --backend dlib (2 workers)", _child("full", CLIP, args.every, "dlib")),
            ("extract --backend mediapipe (2 workers)", _child("full", CLIP, args.every, "mediapipe"))]
    with tempfile.TemporaryDirectory() as tmp:
        long_video = _long_copy(CLIP, 4, Path(tmp))
        rows.append(("mediapipe, 4x longer video, same frames", _child("full", long_video, args.every * 4)))
        rows.append(("mediapipe, 4x longer, 4x frames", _child("full", long_video, args.every)))
    base = rows[0][1]
    base_fps = base["frames"] / base["seconds"]
    lines = [f"extraction on {CLIP.name}, every {args.every} frame(s), {os.cpu_count()} cores",
             f"{'run':<42}{'frames':>7}{'faces':>7}{'x faces':>8}{'seconds':>9}{'frames/s':>10}{'x fps':>7}{'peak MB':>9}"]
    for label, r in rows:
        fps = r["frames"] / r["seconds"]
        lines.append(f"{label:<42}{r['frames']:>7}{r['faces']:>7}{r['faces'] / max(base['faces'], 1):>7.2f}x"
                     f"{r['seconds']:>9.1f}{fps:>10.2f}{fps / base_fps:>6.2f}x{r['peak_mb']:>9.0f}")
    mp, short, longer = rows[5][1], rows[6][1], rows[7][1]
    faces_per_s = lambda r: r["faces"] / r["seconds"]  # noqa: E731
    lines.append(f"mediapipe extract vs the bare dlib loop: {mp['faces'] / max(base['faces'], 1):.2f}x the faces at "
                 f"{mp['frames'] / mp['seconds'] / base_fps:.2f}x the frames/s (target >= 2x at >= 4x), "
                 f"{faces_per_s(mp) / faces_per_s(base):.2f}x the faces/s; steady state (4x frames): "
                 f"{longer['frames'] / longer['seconds'] / base_fps:.2f}x the frames/s")
    lines.append(f"detection + landmarks alone: mediapipe {rows[2][1]['frames'] / rows[2][1]['seconds']:.1f} frames/s vs "
                 f"dlib {rows[1][1]['frames'] / rows[1][1]['seconds']:.1f} "
                 f"({rows[2][1]['frames'] / rows[2][1]['seconds'] / (rows[1][1]['frames'] / rows[1][1]['seconds']):.2f}x)")
    lines.append("peak MB = the run's process plus its largest child (worker or database)")
    lines.append(f"peak memory, 4x the frames vs 1x: {longer['peak_mb'] / short['peak_mb']:.2f}x (flat = ~1.0x)")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
