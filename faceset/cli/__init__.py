"""The single `faceset` command: the composition root of curate, train and convert."""
from __future__ import annotations

import os
from pathlib import Path

# OpenCV and its FFmpeg print their own lines for every damaged frame; faceset reports those itself, once
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import typer  # noqa: E402

from faceset.cli import common  # noqa: E402
from faceset.cli import convert as convert_cli  # noqa: E402
from faceset.cli import curate as curate_cli  # noqa: E402
from faceset.cli import mask as mask_cli  # noqa: E402
from faceset.cli import train as train_cli  # noqa: E402

app = typer.Typer(
    name="faceset", no_args_is_help=True, add_completion=False,
    help="Curate face-swap face-sets as FiftyOne datasets, train on them, convert with the result.",
)
for command in [*curate_cli.app.registered_commands, *train_cli.app.registered_commands,
                *convert_cli.app.registered_commands]:
    app.registered_commands.append(command)
app.add_typer(mask_cli.app, name="mask")

SAMPLES = Path(__file__).resolve().parents[2] / "datasets" / "samples"


@app.command()
def demo(
    dataset: str = typer.Option("faceset-demo", "--dataset", "-d", help="Dataset to build."),
    samples: Path = typer.Option(SAMPLES, "--samples", help="Folder of shipped sample media."),
    out: Path = typer.Option(Path("faceset-demo"), "--out", "-o", help="Folder for reports, exports, model and video."),
    every: int = typer.Option(5, "--every", "-n", min=1, help="Analyse every Nth video frame."),
    iters: int = typer.Option(300, "--iters", min=0, help="Training iterations (0: stop after the export)."),
) -> None:
    """The whole job on the shipped samples: extract, clean identities, gaps, export, train, convert the clip."""
    from curate.dataset.info import dataset_info, format_info
    from curate.dataset.store import load_dataset
    from curate.dataset.trash import delete_reversibly
    from curate.export.balanced import export_faces
    from curate.extract.local import extract
    from curate.ops.gaps import dataset_gaps
    from curate.ops.identity import WRONG_IDENTITY_VIEW, dataset_identity

    video = sorted(samples.glob("*.mp4"))
    photos = sorted(p for p in samples.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    reference = samples / "obama.jpg"
    for subset, files in (("A", video), ("B", photos)):
        typer.echo(f"== extracting {len(files)} file(s) into {dataset}/{subset}")
        summary = extract(files, dataset, subset, every=every)
        typer.echo("\n".join(summary.lines()))
    typer.echo("== identity cleanup (A: its dominant person; B: the person in obama.jpg), reversible")
    for subset, refs in (("A", None), ("B", [str(reference)])):
        scores, _ = dataset_identity(dataset, subset, refs)
        ds = load_dataset(dataset)
        batch = delete_reversibly(ds, ds.load_saved_view(WRONG_IDENTITY_VIEW), reason=f"demo: wrong identity in {subset}")
        typer.echo(f"{subset}: {len(scores.ok)} faces, {batch['count']} of other people moved to the trash "
                   f"(`faceset undo {dataset}` brings them back), {int(scores.unsure_faces.sum())} unsure (tracks "
                   f"of turned faces only: kept for review in the view identity_unsure, left out of gaps and export), "
                   f"{int(scores.not_face.sum())} detections that are not faces (left out too)")
    typer.echo(format_info(dataset_info(dataset)))
    report, paths, _ = dataset_gaps(dataset, out_dir=out / "reports")
    typer.echo(f"== gaps: B covers {report.coverage['B_covers_A']:.0%} of A's poses; heatmap {paths['png']}")
    for subset in ("A", "B"):
        result = export_faces(dataset, subset, out / "export" / subset, size=64, progress=False, overwrite=True)
        typer.echo(f"== exported {result.count} faces of {subset} to {result.out} ({result.plot.name})")
    if iters == 0:
        return
    from convert.pipeline import ConvertSettings, convert
    from train.trainer import TrainSettings, train

    typer.echo(f"== training the original face-swap model for {iters} iterations (64 px, CPU)")
    train(TrainSettings(str(out / "export" / "A"), str(out / "export" / "B"), str(out / "model"), iters=iters,
                        lr=1e-4, preview_every=100))
    typer.echo(f"model: {out / 'model'} (preview.png, losses.png)")
    person = samples / "lin-manuel-miranda.png"  # A's person: the other faces of the clip stay as they are
    only = [str(person)] if person.is_file() else []
    typer.echo("== converting the sample clip A -> B" + (f", only the faces of {person.name} (--only)" if only else ""))
    done = convert(video, out / "model", out / "converted", ConvertSettings(only=only))
    typer.echo("\n".join(done.lines()))


def _database_failure(exc: BaseException) -> bool:
    """Whether an error is FiftyOne's database service failing to start (a ServiceException)."""
    return any(c.__name__ == "ServiceException" and c.__module__ == "fiftyone.core.service" for c in type(exc).__mro__)


def main() -> None:
    """Entry point of the `faceset` console script: every error, usage errors included, is one
    `faceset: error: ...` line on stderr; exit 0 done, 1 nothing could be done, 2 usage or user error."""
    import sys

    try:
        from typer._click import exceptions as cx  # typer >= 0.16 vendors click
    except ImportError:  # pragma: no cover - older typer on real click
        from click import exceptions as cx

    try:
        code = app(standalone_mode=False)
    except cx.NoArgsIsHelpError as exc:
        print(exc.format_message() if hasattr(exc, "format_message") else exc, file=sys.stderr)
        sys.exit(2)
    except cx.UsageError as exc:
        where = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        print(f"faceset: error: {exc.format_message()}{where}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except cx.ClickException as exc:
        print(f"faceset: error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("faceset: aborted", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:  # the embedded database could not start: FiftyOne's ServiceException (not imported
        if not _database_failure(exc):  # here: `faceset --help` need not load FiftyOne)
            raise
        import fiftyone as fo

        log = Path(fo.config.database_dir) / "log" / "mongo.log"
        print(f"faceset: error: the FiftyOne database service could not start ({type(exc).__name__}: {exc}); "
              f"its log: {log}", file=sys.stderr)
        sys.exit(1)
    if code == common.INTERRUPTED and not common.interrupt_said:
        print("faceset: interrupted (what was stored so far is kept)", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
