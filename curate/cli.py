"""curate commands of the `faceset` CLI: extract, info, app."""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True)


@contextmanager
def user_errors(*kinds: type[BaseException]) -> Iterator[None]:
    """Turn the expected errors (missing dataset, bad value, missing models) into one line and exit 2."""
    from curate.store import DatasetNotFound

    try:
        yield
    except (DatasetNotFound, *kinds) as exc:
        typer.echo(f"faceset: error: {exc}", err=True)
        raise typer.Exit(2)


class Backend(str, Enum):
    dlib = "dlib"
    insightface = "insightface"


class Detector(str, Enum):
    hog = "hog"
    cnn = "cnn"


@app.command()
def extract(
    sources: list[Path] = typer.Argument(..., help="Videos, images or folders of them."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="FiftyOne dataset to add faces to (created if new)."),
    subset: str = typer.Option("A", "--subset", "-s", help="A (face to replace) or B (face to paste in)."),
    every: int = typer.Option(1, "--every", "-n", min=1, help="Analyse every Nth video frame."),
    min_size: int = typer.Option(0, "--min-size", min=0, help="Leave out faces smaller than this (source px)."),
    backend: Backend = typer.Option(Backend.dlib, "--backend", "-b", help="Face analysis backend."),
    detector: Detector = typer.Option(Detector.hog, "--detector", help="dlib detector: hog (fast) or cnn (mmod)."),
    upsample: int = typer.Option(1, "--upsample", min=0, help="dlib: upsample the image N times to find small faces."),
    models_dir: Optional[Path] = typer.Option(None, "--models-dir", help="insightface: models folder (default ~/.insightface)."),
    size: int = typer.Option(256, "--size", min=32, help="Side of the aligned face crops in pixels."),
    coverage: float = typer.Option(0.75, "--coverage", min=0.2, max=1.0, help="Fraction of the crop the face spans."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Analysis processes (default: 2 cores)."),
    expression_threshold: Optional[list[str]] = typer.Option(None, "--expression-threshold", help="e.g. smile=0.6 (repeatable)."),
    media_dir: Optional[Path] = typer.Option(None, "--media-dir", help="Where crops go (default: FiftyOne dataset dir)."),
) -> None:
    """Find, align and analyse every face of the sources into a FiftyOne dataset (resumable)."""
    from curate.backends import ModelsMissingError
    from curate.expression import ExpressionThresholds
    from curate.extract import extract as run

    if subset not in ("A", "B"):
        raise typer.BadParameter("use A or B", param_hint="--subset")
    options = {"detector": detector.value, "upsample": upsample} if backend == Backend.dlib else {"models_dir": models_dir and str(models_dir)}
    with user_errors(ModelsMissingError, ValueError):
        thresholds = ExpressionThresholds.parse(expression_threshold)
        summary = run(
            list(sources), dataset, subset, every=every, min_size=min_size, backend=backend.value,
            backend_options=options, workers=workers, size=size, coverage=coverage, thresholds=thresholds,
            media_dir=media_dir,
        )
    typer.echo("\n".join(summary.lines()))
    if not summary.ok:
        raise typer.Exit(1)


@app.command()
def info(
    dataset: str = typer.Argument(..., help="Dataset name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Counts per subset, field ranges and expression label counts of a dataset."""
    from curate.info import dataset_info, format_info
    with user_errors():
        data = dataset_info(dataset)
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else format_info(data))


@app.command("app")
def app_command(
    dataset: str = typer.Argument(..., help="Dataset name."),
    port: int = typer.Option(5151, "--port", help="Port of the App."),
    address: str = typer.Option("localhost", "--address", help="Address to serve on."),
) -> None:
    """Open the FiftyOne App on localhost for a dataset."""
    from curate.app import launch
    with user_errors():
        launch(dataset, port=port, address=address)


def _edges(text: Optional[str], default: tuple[float, ...]) -> tuple[float, ...]:
    if not text:
        return default
    try:
        edges = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"comma-separated numbers expected, got {text!r}")
    if list(edges) != sorted(set(edges)):
        raise typer.BadParameter("bin edges must be increasing")
    return edges


@app.command()
def gaps(
    dataset: str = typer.Argument(..., help="Dataset name."),
    yaw_bins: Optional[str] = typer.Option(None, "--yaw-bins", help="Yaw bin edges, e.g. -60,-40,-25,-10,10,25,40,60."),
    pitch_bins: Optional[str] = typer.Option(None, "--pitch-bins", help="Pitch bin edges, e.g. -25,-10,10,25."),
    by: Optional[str] = typer.Option(None, "--by", help="'expression' to bin by expression label too."),
    min_count: int = typer.Option(3, "--min-count", min=1, help="Faces a bin needs in one set to count as a gap in the other."),
    thin_ratio: float = typer.Option(0.25, "--thin-ratio", help="Thin: share below this fraction of the other set's share."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the JSON report and heatmap PNG."),
) -> None:
    """Pose (and expression) coverage gaps between A and B: report, heatmap PNG and saved views."""
    from curate.gaps import DEFAULT_PITCH_EDGES, DEFAULT_YAW_EDGES, dataset_gaps
    if by not in (None, "expression"):
        raise typer.BadParameter("only 'expression' is supported", param_hint="--by")
    with user_errors():
        report, paths, views = dataset_gaps(
            dataset, _edges(yaw_bins, DEFAULT_YAW_EDGES), _edges(pitch_bins, DEFAULT_PITCH_EDGES),
            by_expression=by == "expression", min_count=min_count, thin_ratio=thin_ratio, out_dir=out,
        )
    totals = report.to_json()["totals"]
    typer.echo(f"faces: A={totals['A']} B={totals['B']}")
    typer.echo(f"coverage: B covers {report.coverage['B_covers_A']:.1%} of A; A covers {report.coverage['A_covers_B']:.1%} of B")
    for g in report.gaps:
        have = "A" if g["lacking"] == "B" else "B"
        expr = f" {g['expression']}" if by else ""
        typer.echo(f"{g['lacking']} {g['kind']:<8} yaw {g['yaw']:>9} pitch {g['pitch']:>9}{expr}: "
                   f"{have}={g['count_' + have]} {g['lacking']}={g['count_' + g['lacking']]}")
    if not report.gaps:
        typer.echo("no gaps")
    typer.echo(f"report: {paths['json']}\nheatmap: {paths['png']}")
    for v in views:
        typer.echo(f"saved view: {v}")


@app.command()
def identity(
    dataset: str = typer.Argument(..., help="Dataset name."),
    subset: str = typer.Option(..., "--subset", "-s", help="A or B."),
    reference: Optional[list[Path]] = typer.Option(None, "--reference", "-r", help="Images/folders of the right person."),
    threshold: Optional[float] = typer.Option(None, "--threshold", "-t", help="Max distance to the identity (dlib 0.35)."),
    review: bool = typer.Option(False, "--review", help="Also save 'identity_review': the subset sorted worst-first."),
) -> None:
    """Score every face against the identity, flag wrong ones (view 'wrong_identity'), split into clusters."""
    from curate.identity import dataset_identity
    with user_errors(ValueError):
        scores, views = dataset_identity(dataset, subset, [str(r) for r in reference or []], threshold, review)
    typer.echo(f"subset {subset}: {len(scores.ok)} faces, {int((~scores.ok).sum())} flagged as another identity "
               f"(threshold {scores.threshold:g}), {len(set(scores.cluster.tolist()))} identity clusters")
    typer.echo("saved views: " + ", ".join(views))
    typer.echo(f"remove the flagged faces with: faceset delete {dataset} --view wrong_identity")


@app.command()
def delete(
    dataset: str = typer.Argument(..., help="Dataset name."),
    view: str = typer.Option(..., "--view", help="Saved view whose samples to delete (e.g. wrong_identity)."),
) -> None:
    """Delete a saved view's samples in bulk, reversibly (moved to DATASET-trash; `faceset undo` restores)."""
    from curate.store import DatasetNotFound, load_dataset
    from curate.trash import delete_reversibly

    with user_errors():
        ds = load_dataset(dataset)
        if not ds.has_saved_view(view):
            raise DatasetNotFound(f"no saved view {view!r} (views: {', '.join(ds.list_saved_views()) or 'none'})")
        batch = delete_reversibly(ds, ds.load_saved_view(view), reason=f"view {view}")
    typer.echo(f"deleted {batch['count']} samples (batch {batch['id']}); undo with: faceset undo {dataset}")


@app.command()
def undo(
    dataset: str = typer.Argument(..., help="Dataset name."),
    batch: Optional[str] = typer.Option(None, "--batch", help="Batch id to restore (default: the latest)."),
) -> None:
    """Restore the latest (or a named) batch of deleted samples."""
    from curate.trash import undo as run_undo

    with user_errors(LookupError):
        restored = run_undo(dataset, batch)
    typer.echo(f"restored {restored['count']} samples (batch {restored['id']}, {restored['reason']})")
