"""The training loop: data workers, masked losses, checkpoints/resume, CSV + PNG feedback, optional DDP.

Run under ``torchrun --nproc_per_node N`` for data parallel training (gloo on CPU, nccl on GPU); rank 0
writes checkpoints, logs and previews.
"""
from __future__ import annotations

import csv
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from curate.core.device import torch_device
from train.checkpoint import latest_loadable, save_checkpoint
from train.config import TrainSettings
from train.data import BatchSource, load_faceset, preview_faces
from train.losses import face_loss
from train.model import FaceSwapModel


@dataclass
class TrainResult:
    """Where training ended and its loss history (rank 0)."""

    iteration: int
    losses: list[tuple[int, float, float]]
    checkpoint: Path | None


class BothSides(torch.nn.Module):
    """One forward for A and B together, so DistributedDataParallel sees every parameter used once per step."""

    def __init__(self, model: FaceSwapModel):
        super().__init__()
        self.model = model

    def forward(self, xa: torch.Tensor, xb: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        return self.model(xa, "A"), self.model(xb, "B")


def _distributed(device: torch.device) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _loader(source: BatchSource, start: int, stop: int, workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(source, batch_size=None, sampler=range(start, stop), num_workers=workers,
                                       prefetch_factor=4 if workers else None, persistent_workers=False)


def _grid(rows: list[torch.Tensor]) -> np.ndarray:
    return np.concatenate([np.concatenate(list(r.permute(0, 2, 3, 1).cpu().numpy()), axis=1) for r in rows], axis=0)


def write_preview(model: FaceSwapModel, faces_a: torch.Tensor, faces_b: torch.Tensor, path: Path, iteration: int) -> Path:
    """PNG grid on fixed faces, one column pair per face: A, A->A, A->B | B, B->B, B->A."""
    import cv2

    from curate.core.media import write_image

    model.eval()
    with torch.no_grad():
        rows_a = [faces_a, model(faces_a, "A")[0], model.swap(faces_a, "B")[0]]
        rows_b = [faces_b, model(faces_b, "B")[0], model.swap(faces_b, "A")[0]]
    model.train()
    grid = np.concatenate([_grid(rows_a), _grid(rows_b)], axis=1)
    img = (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)
    header = np.full((22, img.shape[1], 3), 255, np.uint8)
    cv2.putText(header, f"iter {iteration}: rows original / same identity / swapped; left A, right B", (4, 16),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    write_image(np.concatenate([header, img]), path)
    return path


def plot_losses(csv_path: Path, png: Path) -> Path:
    """Loss curves (A and B, raw and smoothed) from the CSV log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = np.loadtxt(csv_path, delimiter=",", skiprows=1, ndmin=2)
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for col, name in ((1, "A"), (2, "B")):
        ax.plot(data[:, 0], data[:, col], alpha=0.3)
        k = max(1, len(data) // 50)
        smooth = np.convolve(data[:, col], np.ones(k) / k, mode="valid")
        ax.plot(data[k - 1:, 0], smooth, label=f"loss {name}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("masked MAE + MSE + DSSIM + mask")
    ax.set_yscale("log")
    ax.legend()
    fig.savefig(png, bbox_inches="tight")
    plt.close(fig)
    return png


def train(settings: TrainSettings, progress: bool = True) -> TrainResult:
    """Train (or resume) a face-swap model on two export folders."""
    device = torch_device(settings.device)
    rank, world = _distributed(device)
    torch.use_deterministic_algorithms(True, warn_only=True)
    model_dir = Path(settings.model_dir)
    config = settings.model_config()
    faces_a, faces_b = load_faceset(Path(settings.a), config.size), load_faceset(Path(settings.b), config.size)
    torch.manual_seed(settings.seed)
    model = FaceSwapModel(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, betas=(0.5, 0.999))
    start = 0
    if settings.resume:
        meta = latest_loadable(model_dir, model, optimizer)
        if meta is not None:
            if meta["config"] != config.to_dict():
                raise ValueError(f"{model_dir} holds a {meta['config']} model; this run asks for {config.to_dict()}")
            start = meta["iteration"]
    both = BothSides(model)
    net = torch.nn.parallel.DistributedDataParallel(both) if world > 1 else both
    if rank == 0:
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / "train.json").write_text(json.dumps(asdict(settings), indent=1))
        la, lb = faces_a.alignment, faces_b.alignment
        if la["backend"] != lb["backend"] or abs(la["coverage"] - lb["coverage"]) > 0.01:
            print(f"faceset: warning: A and B were aligned differently ({faces_a.alignment} vs {faces_b.alignment}); "
                  "conversion uses A's", file=sys.stderr)
        (model_dir / "model.json").write_text(json.dumps({**config.to_dict(), "alignment": faces_a.alignment}, indent=1))
    source = BatchSource(faces_a, faces_b, settings.batch, settings.seed, rank, settings.mask_erode, settings.feature_weight)
    preview_a, preview_b = preview_faces(faces_a).to(device), preview_faces(faces_b).to(device)
    log_path = model_dir / "losses.csv"
    losses: list[tuple[int, float, float]] = []
    if rank == 0 and (start == 0 or not log_path.exists()):
        log_path.write_text("iteration,loss_a,loss_b,seconds\n")
    elif rank == 0:  # drop log lines past the checkpoint we resume from
        lines = log_path.read_text().splitlines()
        log_path.write_text("\n".join([lines[0]] + [ln for ln in lines[1:] if int(ln.split(",")[0]) <= start]) + "\n")
    saved = None
    bar = tqdm(total=settings.iters, initial=start, disable=not progress or rank != 0, unit="it", desc="train")
    t0 = time.perf_counter()
    with open(log_path, "a", newline="") if rank == 0 else open(os.devnull, "w") as log:
        writer = csv.writer(log)
        for iteration, batch in enumerate(_loader(source, start, settings.iters, settings.workers), start=start + 1):
            total, values = 0, []
            sides = {side: {k: v.to(device, non_blocking=True) for k, v in batch[side].items()} for side in ("A", "B")}
            outputs = net(sides["A"]["warped"], sides["B"]["warped"])
            for (pred, pred_mask), b in zip(outputs, sides.values()):
                terms = face_loss(pred, pred_mask, b["target"], b["mask"], b["weight"])
                total = total + terms["total"]
                values.append(float(terms["total"].detach()))
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            losses.append((iteration, values[0], values[1]))
            writer.writerow([iteration, f"{values[0]:.6f}", f"{values[1]:.6f}", f"{time.perf_counter() - t0:.2f}"])
            bar.set_postfix(A=f"{values[0]:.4f}", B=f"{values[1]:.4f}")
            bar.update(1)
            if rank == 0 and (iteration % settings.preview_every == 0 or iteration == settings.iters):
                log.flush()
                write_preview(model, preview_a, preview_b, model_dir / "preview.png", iteration)
                plot_losses(log_path, model_dir / "losses.png")
            if rank == 0 and (iteration % settings.save_every == 0 or iteration == settings.iters):
                log.flush()
                saved = save_checkpoint(model_dir, model, optimizer, iteration, config.to_dict(),
                                        {"seed": settings.seed, "arch": config.arch}, settings.keep)
    bar.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return TrainResult(max(start, losses[-1][0] if losses else start), losses, saved)
