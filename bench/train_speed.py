"""Training speed: full pipeline (augmenting data workers + model step) vs the bare model step on pre-made
tensors, at 64 and 128 px, batch 16, same run; then an optional quality run.

    .venv/bin/python bench/train_speed.py [--iters 20] [--quality-iters 0]

Faces come from the sample media: the clip (A, every 4th frame, minus the audience shots) and the photos
(B), extracted into a private embedded database and exported at 128 px. The quality run trains that long and
prints the identity-embedding distance of A->B outputs to B's mean embedding and to A's.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="faceset-train-bench-"))
os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(_TMP / "db"))
os.environ["FIFTYONE_DEFAULT_DATASET_DIR"] = str(_TMP / "media")
ROOT = Path(__file__).resolve().parent.parent


def make_exports() -> tuple[Path, Path]:
    """Extract and export the sample faces into a dataset of this run only (deleted afterwards: FiftyOne attaches
    to any database service of the user that is already running, whatever FIFTYONE_DATABASE_DIR says)."""
    import fiftyone as fo
    from fiftyone import ViewField as F

    from curate.export.balanced import export_faces
    from curate.extract.local import extract
    from curate.dataset.store import load_dataset
    samples = ROOT / "datasets" / "samples"
    name = f"bench-train-{os.getpid()}"
    try:
        extract([samples / "short_hamilton_clip.mp4"], name, "A", every=4, progress=False)
        ds = load_dataset(name)
        ds.delete_samples(ds.match(F("frame") > 215))
        extract([samples / n for n in ("obama.jpg", "obama_small.jpg", "obama_partial_face.jpg")], name, "B", workers=1, progress=False)
        export_faces(name, "A", _TMP / "A", size=128, progress=False)
        export_faces(name, "B", _TMP / "B", size=128, progress=False)
    finally:
        for n in (name, f"{name}-trash"):
            if fo.dataset_exists(n):
                fo.delete_dataset(n)
    return _TMP / "A", _TMP / "B"


def bare_step_rate(size: int, batch: int, iters: int) -> float:
    import torch

    from train.losses import face_loss
    from train.config import ModelConfig
    from train.model import FaceSwapModel
    from train.trainer import BothSides
    torch.manual_seed(0)
    model = BothSides(FaceSwapModel(ModelConfig(size=size)))
    opt = torch.optim.Adam(model.parameters(), 5e-5, betas=(0.5, 0.999))
    x = torch.rand(batch, 3, size, size)
    m, w = torch.ones(batch, 1, size, size), torch.ones(batch, 1, size, size)
    def step():
        outs = model(x, x)
        loss = sum(face_loss(p, pm, x, m, w)["total"] for p, pm in outs)
        opt.zero_grad()
        loss.backward()
        opt.step()
    step()
    t = time.perf_counter()
    for _ in range(iters):
        step()
    return iters / (time.perf_counter() - t)


def pipeline_rate(a: Path, b: Path, size: int, batch: int, iters: int, workers: int, warm: int = 3) -> float:
    """Steady-state it/s of the real training loop, from the seconds column of its own losses.csv.

    The first ``warm`` iterations (worker start-up, first batches) and the final checkpoint/preview are left out,
    as the bare rate leaves out model construction.
    """
    from train.trainer import TrainSettings, train
    d = _TMP / f"m{size}"
    train(TrainSettings(str(a), str(b), str(d), size=size, batch=batch, iters=warm + iters, workers=workers,
                        preview_every=10**9, save_every=10**9, resume=False), progress=False)
    seconds = [float(line.split(",")[3]) for line in (d / "losses.csv").read_text().splitlines()[1:]]
    return iters / (seconds[-1] - seconds[warm - 1])


def quality(a: Path, b: Path, iters: int) -> None:
    """Train the default 64 px model for ``iters`` iterations on A and B, then evaluate it."""
    from train.trainer import TrainSettings, train
    d = _TMP / "quality"
    train(TrainSettings(str(a), str(b), str(d), size=64, batch=16, iters=iters, lr=1e-4, workers=1), progress=True)
    evaluate(d, a, b)


def evaluate(model_dir: Path, a: Path, b: Path) -> None:
    """Identity-embedding distances (dlib, 128-d) of A's faces, their A->A reconstructions and A->B swaps to the
    mean embeddings of A and B: a working swap moves A's faces towards B."""
    import numpy as np
    import torch

    from curate.analysis.registry import create_analyzer
    from train.checkpoint import load_model
    from train.data import load_faceset
    model, meta = load_model(model_dir)
    analyzer = create_analyzer("dlib")
    fa, fb = load_faceset(a, 128), load_faceset(b, 128)

    def emb(images, marks):
        return np.stack([analyzer.embedder.embed(np.ascontiguousarray(img), pts) for img, pts in zip(images, marks)])

    def render(to: str | None) -> np.ndarray:
        x = torch.from_numpy(fa.images.transpose(0, 3, 1, 2).astype(np.float32) / 255)
        x = torch.nn.functional.interpolate(x, size=model.config.size, mode="area")
        with torch.no_grad():
            out = model(x, "A")[0] if to is None else model.swap(x, to)[0]
        out = torch.nn.functional.interpolate(out, size=128, mode="bilinear")
        return (out.permute(0, 2, 3, 1).numpy() * 255).round().clip(0, 255).astype(np.uint8)

    ea, eb = emb(fa.images, fa.landmarks), emb(fb.images, fb.landmarks)
    mean_a, mean_b = ea.mean(0), eb.mean(0)
    print(f"\nquality after {meta['iteration']} iterations ({len(fa.images)} A faces, {len(fb.images)} B faces; "
          "mean distance of the A faces' embeddings to each identity's mean):")
    print(f"{'A faces as':<22} {'to A mean':>10} {'to B mean':>10}")
    for label, images in (("originals", fa.images), ("A->A reconstruction", render(None)), ("A->B swap", render("B"))):
        e = emb(images, fa.landmarks)
        to_a, to_b = np.linalg.norm(e - mean_a, axis=1).mean(), np.linalg.norm(e - mean_b, axis=1).mean()
        print(f"{label:<22} {to_a:>10.3f} {to_b:>10.3f}{'   closer to B' if to_b < to_a else ''}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--quality-iters", type=int, default=0)
    ap.add_argument("--skip-speed", action="store_true", help="only the quality run")
    ap.add_argument("--evaluate", type=Path, help="only evaluate this trained model folder (exports made afresh)")
    args = ap.parse_args()
    if args.evaluate:
        evaluate(args.evaluate, *make_exports())
        return
    a, b = make_exports()
    if args.skip_speed:
        quality(a, b, args.quality_iters)
        return
    print(f"{'size':>5} {'bare model it/s':>16} {'full pipeline it/s':>19} {'overhead':>9}")
    for size in (64, 128):
        bare = bare_step_rate(size, args.batch, args.iters)
        full = pipeline_rate(a, b, size, args.batch, args.iters, args.workers)
        print(f"{size:>5} {bare:>16.2f} {full:>19.2f} {bare / full:>8.2f}x")
    print("overhead = bare it/s / pipeline it/s (1.0 = data never waited on; target <= 1.1)")
    if args.quality_iters:
        quality(a, b, args.quality_iters)


if __name__ == "__main__":
    main()
