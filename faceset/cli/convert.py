"""`faceset convert`."""
from __future__ import annotations

from pathlib import Path

import typer

from convert.blend import BLENDS
from convert.color import COLOR_TRANSFERS
from convert.settings import DIRECTIONS, FORMATS, ConvertSettings
from faceset.cli.common import choice

app = typer.Typer(no_args_is_help=True)

Direction = choice("Direction", DIRECTIONS)
Color = choice("Color", COLOR_TRANSFERS)
Blend = choice("Blend", BLENDS)
Format = choice("Format", FORMATS)
C = ConvertSettings  # the defaults of every option


@app.command()
def convert(
    inputs: list[Path] = typer.Argument(..., help="Videos, images or folders of them."),
    model: Path = typer.Option(..., "--model", help="Model folder written by `faceset train`."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (or an .mp4 path for one input video)."),
    direction: Direction = typer.Option(C.direction, "--direction", help="a2b: A's faces become B; b2a: the reverse."),
    only: list[Path] = typer.Option([], "--only", help="Swap only faces matching this reference image or folder."),
    threshold: float = typer.Option(None, "--threshold", help="--only distance threshold (default: the backend's)."),
    color: Color = typer.Option(C.color, "--color", help="Colour transfer: none, rct (Reinhard, Lab), lct (linear), hist."),
    mask: str = typer.Option(C.mask, "--mask", help="hull (landmarks), model (the swap model's mask), both, learned "
                             "(the face-set's mask network, needs --mask-model) and hands (hands in front of the face "
                             "cut out), joined by commas: e.g. learned,hands."),
    mask_model: Path | None = typer.Option(None, "--mask-model", help="The mask network `faceset mask train` saved."),
    mask_erode: int = typer.Option(None, "--mask-erode", help="Erode the mask by PX frame pixels (default 2% of the face; negative grows it)."),
    mask_blur: int = typer.Option(None, "--mask-blur", min=0, help="Feather the mask edge over PX frame pixels (default 6% of the face)."),
    blend: Blend = typer.Option(C.blend, "--blend", help="alpha (feathered mask) or seamless (Poisson clone)."),
    every_frame_detect: bool = typer.Option(C.every_frame_detect, "--every-frame-detect", help="Run the detector on every frame instead of following faces between key frames."),
    detect_every: int = typer.Option(C.detect_every, "--detect-every", min=1, help="Key-frame interval of the detector when following faces."),
    smooth: float = typer.Option(C.smooth, "--smooth", min=0.0, max=0.95, help="Landmark smoothing across frames (0 = off)."),
    fmt: Format = typer.Option(C.fmt, "--format", help="Video output: mp4 (audio kept) or png frames (resumable)."),
    alpha: bool = typer.Option(C.alpha, "--alpha", help="RGBA PNGs whose alpha is the pasted faces' mask (implies png)."),
    device: str = typer.Option(C.device, "--device", help="Torch device for the model: auto, cpu, cuda, mps."),
    overwrite: bool = typer.Option(C.overwrite, "--overwrite", help="Redo outputs that exist (default: keep them, resume)."),
) -> None:
    """Swap faces in videos and images with a trained model."""
    from convert.pipeline import convert as run
    from curate.analysis.protocols import ModelsMissingError
    from curate.core.media import MediaError, report_error
    from faceset.cli.common import user_errors
    from train.checkpoint import CheckpointError

    with user_errors(CheckpointError, ModelsMissingError, MediaError, ValueError):  # ValueError: also --only refs
        settings = ConvertSettings(direction.value, [str(p) for p in only], threshold, color.value, mask,
                                   str(mask_model) if mask_model else None, mask_erode, mask_blur, blend.value,
                                   every_frame_detect, detect_every, smooth, fmt.value, alpha, device, overwrite)
        summary = run(inputs, model, out, settings, on_error=report_error)
    typer.echo("\n".join(summary.lines()))
    if not summary.outputs:
        raise typer.Exit(1)
