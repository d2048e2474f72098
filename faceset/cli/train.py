"""`faceset train`."""
from __future__ import annotations

from pathlib import Path

import typer

from faceset.cli.common import choice
from train.config import ARCHS, TrainSettings

app = typer.Typer(no_args_is_help=True)


Arch = choice("Arch", ARCHS)
T = TrainSettings  # the defaults of every option


@app.command()
def train(
    a: Path = typer.Option(..., "--a", help="Export folder of A (the face to replace)."),
    b: Path = typer.Option(..., "--b", help="Export folder of B (the face to paste in)."),
    model: Path = typer.Option(..., "--model", help="Model folder: checkpoints, config, logs, previews."),
    arch: Arch = typer.Option(T.arch, "--arch", help="original (two decoders) or liae (shared decoder, inter layers)."),
    size: int = typer.Option(T.size, "--size", help="Face size: 64 or 128 (256 on a GPU)."),
    batch: int = typer.Option(T.batch, "--batch", min=1, help="Faces per identity per step."),
    iters: int = typer.Option(T.iters, "--iters", min=1, help="Train up to this iteration."),
    lr: float = typer.Option(T.lr, "--lr", help="Adam learning rate."),
    seed: int = typer.Option(T.seed, "--seed", help="Seed of weights and data (same seed, same run)."),
    enc_ch: int = typer.Option(T.enc_ch, "--enc-ch", help="Encoder width."),
    ae_dims: int = typer.Option(T.ae_dims, "--ae-dims", help="Bottleneck size."),
    dec_ch: int = typer.Option(T.dec_ch, "--dec-ch", help="Decoder width."),
    mask_erode: int = typer.Option(T.mask_erode, "--mask-erode", min=0, help="Erode the landmark-hull loss mask by N px."),
    save_every: int = typer.Option(T.save_every, "--save-every", min=1, help="Checkpoint every N iterations."),
    preview_every: int = typer.Option(T.preview_every, "--preview-every", min=1, help="Preview + loss PNG every N iterations."),
    keep: int = typer.Option(T.keep, "--keep", min=1, help="Checkpoints to keep."),
    workers: int = typer.Option(T.workers, "--workers", min=0, help="Data worker processes."),
    device: str = typer.Option(T.device, "--device", help="auto, cpu, cuda, cuda:1, mps."),
    resume: bool = typer.Option(T.resume, "--resume/--restart", help="Continue from the newest checkpoint."),
) -> None:
    """Train a face-swap autoencoder on two export folders (torchrun for data-parallel)."""
    from train.checkpoint import CheckpointError
    from train.data import FaceSetError
    from train.trainer import train as run

    settings = TrainSettings(str(a), str(b), str(model), arch.value, size, batch, iters, lr, seed, enc_ch, ae_dims,
                             dec_ch, mask_erode, T.feature_weight, save_every, preview_every, keep, workers, device, resume)
    try:
        result = run(settings)
    except (FaceSetError, CheckpointError, ValueError) as exc:
        typer.echo(f"faceset: error: {exc}", err=True)
        raise typer.Exit(2)
    if result.losses:
        first, last = result.losses[0], result.losses[-1]
        typer.echo(f"iterations {first[0]}..{last[0]}: loss A {first[1]:.4f} -> {last[1]:.4f}, B {first[2]:.4f} -> {last[2]:.4f}")
    typer.echo(f"model: {model} (checkpoint {result.checkpoint}; losses.png, preview.png)")
