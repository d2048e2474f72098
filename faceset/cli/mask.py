"""`faceset mask train|apply|fix`: the face-set's own occlusion mask (see curate.masks)."""
from __future__ import annotations

from pathlib import Path

import typer

from faceset.cli.common import Subset

app = typer.Typer(no_args_is_help=True, help="A face-set's learned occlusion mask: train, apply, fix.")


def _errors():
    from faceset.cli.common import user_errors
    from train.checkpoint import CheckpointError

    return user_errors(CheckpointError, ValueError, LookupError, RuntimeError)


@app.command("train")
def train_command(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    subset: Subset | None = typer.Option(None, "--subset", "-s", help="Only this subset (default: A and B)."),
    iters: int = typer.Option(1200, "--iters", min=1, help="Training steps (each 0.25-0.8 s at 128 px on 2 CPU cores: 0.24 s in bench/out/mask_iou.txt, slower while other work shares the cores)."),
    size: int = typer.Option(128, "--size", help="Network input size (a multiple of 16)."),
    batch: int = typer.Option(16, "--batch", min=1, help="Faces per step."),
    out: Path | None = typer.Option(None, "--out", help="Where to save the network (default: beside the dataset's crops)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda, mps."),
    seed: int = typer.Option(0, "--seed", help="Seed of weights, occluders and batches."),
    max_faces: int = typer.Option(1500, "--max-faces", min=2, help="Train on at most this many faces: every one with a real label, the rest spread over the sources (memory ~0.7 MB a face)."),
) -> None:
    """Train a mask network on the face-set: real labels where it has them, synthetic occluders everywhere."""
    from curate.masks.learn import mask_train
    from curate.masks.net import MaskTrainSettings
    from faceset.cli.common import dataset_of

    dataset = dataset_of(dataset_arg, dataset_opt)
    if size % 16:
        raise typer.BadParameter("--size must be a multiple of 16")
    with _errors():
        path, summary = mask_train(dataset, MaskTrainSettings(size=size, iters=iters, batch=batch, seed=seed,
                                                              device=device), subset and subset.value, out,
                                   max_faces=max_faces)
    typer.echo(f"faces {summary['faces']} (real labels {summary['real_labels']}, hand cut-outs "
               f"{summary['hand_cutouts']}), loss {summary['first_loss']:.3f} -> {summary['last_loss']:.3f}")
    typer.echo(f"mask network: {path}\nnext: faceset mask apply {dataset}  (convert: --mask learned --mask-model {path})")


@app.command("apply")
def apply_command(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    model: Path | None = typer.Option(None, "--model", help="Mask network (default: the one `mask train` saved)."),
    subset: Subset | None = typer.Option(None, "--subset", "-s", help="Only this subset."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, mps."),
    cluster: str | None = typer.Option(None, "--cluster", help="Dask scheduler address (default $DASK_SCHEDULER_ADDRESS): chunks of faces run on its workers."),
) -> None:
    """Store the network's mask of every face as the 'mask_learned' segmentation (PNG beside the crops)."""
    from curate.masks.fields import LEARNED_FIELD
    from curate.masks.learn import mask_apply
    from faceset.cli.common import dataset_of

    dataset = dataset_of(dataset_arg, dataset_opt)
    with _errors():
        n = mask_apply(dataset, model, subset and subset.value, device, cluster=cluster)
    typer.echo(f"{n} faces: '{LEARNED_FIELD}' set (the App overlays it; export and training use it)")


@app.command("fix")
def fix_command(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    to: Path | None = typer.Option(None, "--to", help="Write crops + masks here to paint on."),
    from_: Path | None = typer.Option(None, "--from", help="Read painted <id>_mask.png files back as 'mask_fixed'."),
    view: str | None = typer.Option(None, "--view", help="With --to: only this saved view's faces."),
    subset: Subset | None = typer.Option(None, "--subset", "-s", help="With --to: only this subset."),
) -> None:
    """Correct masks by hand: --to DIR writes them out, --from DIR reads the painted ones back (next training uses them)."""
    from curate.core.media import report_error
    from curate.masks.fields import FIXED_FIELD
    from curate.masks.fix import fix_export, fix_import
    from faceset.cli.common import dataset_of

    dataset = dataset_of(dataset_arg, dataset_opt)
    if bool(to) == bool(from_):
        raise typer.BadParameter("give one of --to DIR or --from DIR")
    with _errors():
        if to:
            n = fix_export(dataset, to, view, subset and subset.value)
            typer.echo(f"{n} faces written to {to}: paint <id>_mask.png, then faceset mask fix {dataset} --from {to}")
            return
        n, problems = fix_import(dataset, from_)
    for path, reason in problems:
        report_error(path, reason)
    typer.echo(f"{n} corrected masks stored as '{FIXED_FIELD}' (they outrank every other label in `mask train`)")
    if not n:
        raise typer.Exit(1)
