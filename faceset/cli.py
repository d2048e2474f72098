"""The single `faceset` command: the composition root of curate, train and convert."""
from __future__ import annotations

from pathlib import Path

import typer

from convert import cli as convert_cli
from curate import cli as curate_cli
from train import cli as train_cli

app = typer.Typer(
    name="faceset", no_args_is_help=True, add_completion=False,
    help="Curate face-swap face-sets as FiftyOne datasets, train on them, convert with the result.",
)
for command in [*curate_cli.app.registered_commands, *train_cli.app.registered_commands,
                *convert_cli.app.registered_commands]:
    app.registered_commands.append(command)

SAMPLES = Path(__file__).resolve().parent.parent / "datasets" / "samples"


@app.command()
def demo(
    dataset: str = typer.Option("faceset-demo", "--dataset", "-d", help="Dataset to build."),
    samples: Path = typer.Option(SAMPLES, "--samples", help="Folder of shipped sample media."),
    every: int = typer.Option(5, "--every", "-n", min=1, help="Analyse every Nth video frame."),
) -> None:
    """Extract the shipped sample media (video -> A, photos -> B) and print the dataset summary."""
    from curate.extract import extract
    from curate.info import dataset_info, format_info

    video = sorted(samples.glob("*.mp4"))
    photos = sorted(p for p in samples.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    for subset, files in (("A", video), ("B", photos)):
        typer.echo(f"== extracting {len(files)} file(s) into {dataset}/{subset}")
        summary = extract(files, dataset, subset, every=every)
        typer.echo("\n".join(summary.lines()))
    typer.echo(format_info(dataset_info(dataset)))


def main() -> None:
    """Entry point of the `faceset` console script."""
    app()


if __name__ == "__main__":
    main()
