"""curate commands of the `faceset` CLI: extract, info, app."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from curate.analysis.registry import BACKENDS, CHOICES, DEFAULT_BACKEND, backend_options, options_for
from curate.core.align import DEFAULT_COVERAGE, DEFAULT_SIZE
from curate.core.defaults import keyword_defaults as defaults
from curate.core.expression import LABELS
from curate.core.progress import busy
from curate.export import FORMATS
from curate.export.balanced import export_faces
from curate.extract.cluster import RANGE_FRAMES
from curate.interop.dfl.geometry import FACE_TYPES
from curate.ops.dedupe import METHODS, dataset_dedupe
from curate.ops.gaps import dataset_gaps
from curate.ops.umap import compute_umap
from faceset.cli.common import Subset, choice, dataset_of, stop_interrupted, subset_of, user_errors

app = typer.Typer(no_args_is_help=True)


Backend = choice("Backend", BACKENDS)
Engine = choice("Engine", CHOICES["engine"])
Detector = choice("Detector", CHOICES["detector"])
Expression = choice("Expression", (*LABELS, "unknown"))  # labels to filter on
DflFaceType = choice("DflFaceType", FACE_TYPES)
GapsBy = choice("GapsBy", ("expression",))
DedupeMethod = choice("DedupeMethod", METHODS)
ExportFormat = choice("ExportFormat", FORMATS)
# the defaults of the options: the library functions' own
MEDIAPIPE, DLIB = backend_options("mediapipe"), backend_options("dlib")
GAPS, DEDUPE, UMAP, EXPORT = defaults(dataset_gaps), defaults(dataset_dedupe), defaults(compute_umap), defaults(export_faces)


def say_summary(summary: Any) -> None:
    """Print a run's summary lines; exit 1 when nothing at all could be done (every file refused)."""
    typer.echo("\n".join(summary.lines()))
    if not summary.ok:
        raise typer.Exit(1)


@app.command()
def extract(
    sources: list[Path] = typer.Argument(..., help="Videos, images or folders of them."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="FiftyOne dataset to add faces to (created if new)."),
    subset: Subset = typer.Option(Subset.A, "--subset", "-s", help="A (face to replace) or B (face to paste in)."),
    every: int = typer.Option(1, "--every", "-n", min=1, help="Analyse every Nth video frame."),
    min_size: int = typer.Option(0, "--min-size", min=0, help="Leave out faces smaller than this (source px)."),
    backend: Backend = typer.Option(DEFAULT_BACKEND, "--backend", "-b", help="Face analysis backend."),
    tile: int = typer.Option(MEDIAPIPE.min_tile, "--tile", min=0, help="mediapipe: also search images in tiles down to this side (px) for small faces; 0: off."),
    engine: Engine = typer.Option(MEDIAPIPE.engine, "--engine", help="mediapipe: what runs its models: auto (torch on a GPU, frames batched, when there is one; else OpenCV DNN), opencv, torch."),
    detector: Detector = typer.Option(DLIB.detector, "--detector", help="dlib detector: hog (fast) or cnn (mmod)."),
    upsample: int = typer.Option(DLIB.upsample, "--upsample", min=0, help="dlib: upsample the image N times to find small faces."),
    models_dir: Path | None = typer.Option(None, "--models-dir", help="insightface: models folder (default ~/.insightface)."),
    size: int = typer.Option(DEFAULT_SIZE, "--size", min=32, help="Side of the aligned face crops in pixels."),
    coverage: float = typer.Option(DEFAULT_COVERAGE, "--coverage", min=0.2, max=1.0, help="Fraction of the crop the face spans."),
    workers: int | None = typer.Option(None, "--workers", "-j", min=1, help="Analysis processes (default: 2 cores)."),
    expression_threshold: list[str] | None = typer.Option(None, "--expression-threshold", help="e.g. smile=0.6 (repeatable)."),
    media_dir: Path | None = typer.Option(None, "--media-dir", help="Where crops go (default: FiftyOne dataset dir)."),
    cluster: str | None = typer.Option(None, "--cluster", help="Dask scheduler address (tcp://HOST:8786; default $DASK_SCHEDULER_ADDRESS): spread the work over its workers. None: this machine."),
    range_frames: int = typer.Option(RANGE_FRAMES, "--range-frames", min=1, help="On a cluster: analysed frames per video task."),
) -> None:
    """Find, align and analyse every face of the sources into a FiftyOne dataset (resumable)."""
    from curate.analysis.protocols import ModelsMissingError
    from curate.core.expression import ExpressionThresholds
    from curate.extract.local import extract as run

    options = options_for(backend.value, min_tile=tile, engine=engine.value, detector=detector.value, upsample=upsample,
                          models_dir=models_dir and str(models_dir))
    with user_errors(ModelsMissingError, ValueError):
        thresholds = ExpressionThresholds.parse(expression_threshold)
        summary = run(
            list(sources), dataset, subset.value, every=every, min_size=min_size, backend=backend.value,
            backend_options=options, workers=workers, size=size, coverage=coverage, thresholds=thresholds,
            media_dir=media_dir, cluster=cluster, range_frames=range_frames,
        )
    if summary.interrupted:
        stop_interrupted(f"interrupted after {summary.faces} faces ({summary.frames} frames); they are stored: run "
                         "the same command to resume")
    say_summary(summary)


@app.command()
def info(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Counts per subset, field ranges and expression label counts of a dataset."""
    dataset = dataset_of(dataset_arg, dataset_opt)
    from curate.dataset.info import dataset_info, format_info
    with user_errors():
        data = dataset_info(dataset)
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else format_info(data))


@app.command()
def tracks(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
) -> None:
    """Find shot cuts and link faces into tracks (fields shot, track, is_face; view 'tracks'), for datasets
    extracted before tracks existed or after editing them: extract does this by itself."""
    dataset = dataset_of(dataset_arg, dataset_opt)
    from curate.dataset.store import DatasetNotFound, load_dataset
    from curate.ops.tracks.update import save_track_view, update_tracks
    with user_errors(DatasetNotFound):
        ds = load_dataset(dataset)
        summary = update_tracks(ds)
        view = save_track_view(ds)
    typer.echo(summary.line())
    typer.echo(f"saved view: {view} (one group per track: in the App, pick the view and page through each track)")


@app.command()
def pose(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    expression_threshold: list[str] | None = typer.Option(
        None, "--expression-threshold", help="Label threshold NAME=VALUE for the relabelled expressions, as in extract (repeatable)."),
) -> None:
    """Recompute every face's yaw, pitch and roll with the current estimators from what the dataset stores (mesh,
    landmarks, keypoints), and the expression labels that depend on them: no source is read again; pose_method
    says which estimator made each face's angles."""
    dataset = dataset_of(dataset_arg, dataset_opt)
    from curate.core.expression import ExpressionThresholds
    from curate.dataset.store import DatasetNotFound, load_dataset
    from curate.ops.pose import update_pose
    with user_errors(DatasetNotFound, ValueError):
        summary = update_pose(load_dataset(dataset), thresholds=ExpressionThresholds.parse(expression_threshold))
    typer.echo(summary.line())
    typer.echo("gaps, filters and export read the new angles; run `faceset identity` again: which faces are frontal "
               "enough to vote for their track's identity depends on yaw")


@app.command("app")
def app_command(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    port: int = typer.Option(5151, "--port", help="Port of the App."),
    address: str = typer.Option("localhost", "--address", help="Address to serve on."),
) -> None:
    """Open the FiftyOne App on a face dataset, grid and A/B coverage panel side by side; no dataset: list them."""
    if not (dataset_arg or dataset_opt):
        from curate.app.launch import face_datasets

        found = face_datasets()
        for d in found:
            typer.echo(f"{d['name']}\tA={d['A']}\tB={d['B']}")
        if not found:
            typer.echo("no face datasets yet: faceset extract SOURCES --dataset NAME")
        else:
            typer.echo("open one: faceset app NAME")
        return
    dataset = dataset_of(dataset_arg, dataset_opt)
    from curate.app.launch import launch
    with user_errors():
        try:
            launch(dataset, port=port, address=address)
        except KeyboardInterrupt:
            stop_interrupted("App stopped")


def _edges(text: str | None, default: tuple[float, ...]) -> tuple[float, ...]:
    from curate.app.coverage import parse_edges

    try:
        return parse_edges(text, default)
    except ValueError as exc:
        raise typer.BadParameter(str(exc))


@app.command()
def gaps(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    yaw_bins: str | None = typer.Option(None, "--yaw-bins", help="Yaw bin edges, e.g. -60,-40,-25,-10,10,25,40,60."),
    pitch_bins: str | None = typer.Option(None, "--pitch-bins", help="Pitch bin edges, e.g. -25,-10,10,25."),
    by: GapsBy | None = typer.Option(None, "--by", help="expression: bin by expression label too."),
    min_count: int = typer.Option(GAPS.min_count, "--min-count", min=1, help="Faces a bin needs in one set to count as a gap in the other."),
    thin_ratio: float = typer.Option(GAPS.thin_ratio, "--thin-ratio", help="Thin: share below this fraction of the other set's share."),
    out: Path | None = typer.Option(None, "--out", help="Folder for the JSON report and heatmap PNG."),
    max_views: int = typer.Option(GAPS.max_views, "--max-views", min=0, help="Saved views of single gap bins per lacking subset (largest gaps first)."),
) -> None:
    """Pose (and expression) coverage gaps between A and B: report, heatmap PNG and saved views."""
    dataset = dataset_of(dataset_arg, dataset_opt)
    from curate.ops.gaps import DEFAULT_PITCH_EDGES, DEFAULT_YAW_EDGES, dataset_gaps
    with user_errors(), busy("gaps"):
        report, paths, views = dataset_gaps(
            dataset, _edges(yaw_bins, DEFAULT_YAW_EDGES), _edges(pitch_bins, DEFAULT_PITCH_EDGES),
            by_expression=by == "expression", min_count=min_count, thin_ratio=thin_ratio, out_dir=out,
            max_views=max_views,
        )
    totals = report.to_json()["totals"]
    typer.echo(f"faces: A={totals['A']} B={totals['B']}")
    if report.left_out:
        from curate.ops.identity import left_out_line
        typer.echo(left_out_line(report.left_out))
    cov = report.coverage

    def covers(lack: str, have: str) -> str:
        if not totals[have]:
            return f"{lack} covers {have}: not measured ({have} has no faces)"
        return (f"{lack} covers {cov[f'{lack}_covers_{have}']:.1%} of {have} "
                f"({cov[f'{lack}_covers_{have}_flipped']:.1%} with flips)")

    typer.echo(f"coverage: {covers('B', 'A')}; {covers('A', 'B')}")
    for g in report.gaps:
        have = "A" if g["lacking"] == "B" else "B"
        expr = f" {g['expression']}" if by else ""
        flip = " (flipping fills it)" if g["flip_fills"] else ""
        typer.echo(f"{g['lacking']} {g['kind']:<8} yaw {g['yaw']:>9} pitch {g['pitch']:>9}{expr}: "
                   f"{have}={g['count_' + have]} {g['lacking']}={g['count_' + g['lacking']]}{flip}")
    if not report.gaps:
        typer.echo("no gaps")
    typer.echo(f"report: {paths['json']}\nheatmap: {paths['png']}")
    for v in views:
        typer.echo(f"saved view: {v}")
    for lacking in ("B", "A"):
        bins = sum(g["lacking"] == lacking for g in report.gaps)
        if bins > max_views:
            typer.echo(f"views of single bins {lacking} lacks: {max_views} of {bins} saved (the largest; --max-views "
                       "saves more; the 'all' view holds every one)")


@app.command()
def identity(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    subset: Subset = typer.Option(Subset.A, "--subset", "-s", help="A or B."),
    reference: list[Path] | None = typer.Option(None, "--reference", "-r", help="Images/folders of the right person."),
    threshold: float | None = typer.Option(None, "--threshold", "-t", help="Max distance of a track to the reference (dlib 0.35), or between tracks of one person without one (dlib 0.4)."),
    review: bool = typer.Option(False, "--review", help="Also save 'identity_review': the subset sorted worst-first."),
) -> None:
    """Score every face against the identity, flag wrong ones (view 'wrong_identity'), split into clusters."""
    dataset = dataset_of(dataset_arg, dataset_opt)
    import numpy as np

    from curate.ops.identity import dataset_identity
    with user_errors(ValueError), busy(f"identity of subset {subset_of(subset)}"):
        scores, views = dataset_identity(dataset, subset_of(subset), [str(r) for r in reference or []], threshold, review)
    clusters = len(np.unique(scores.cluster[scores.cluster >= 0]))
    in_views = sum(v.startswith(f"identity: {subset_of(subset)} cluster") for v in views)
    not_faces = int(scores.not_face.sum())  # never judged either: counted apart from the unsure faces
    typer.echo(f"subset {subset_of(subset)}: {len(scores.ok)} faces: {int(scores.ok.sum())} the identity, "
               f"{int(scores.wrong.sum())} another person, {int(scores.unsure_faces.sum())} unsure (their track "
               f"has no face the embedding can judge: review view 'identity_unsure'), {not_faces} detections that are "
               f"not faces; threshold {scores.threshold:g}, {clusters} identity clusters ({in_views} of two faces or more "
               "saved as views)")
    if scores.second_look:
        typer.echo(f"{scores.second_look} turned faces with no frontal face in their track decided by a second look "
                   "(dlib + faceres descriptor)")
    typer.echo("saved views: " + ", ".join(_view_counts(dataset, v) for v in views))
    typer.echo(f"remove the other people's faces with: faceset delete {dataset} --view wrong_identity")


def _view_counts(dataset: str, view: str) -> str:
    """'name (A: 3, B: 1)': a saved view with its faces per subset."""
    from curate.dataset.store import load_dataset

    counts = load_dataset(dataset).load_saved_view(view).count_values("subset")
    return f"{view} ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items())) or 'empty'})"


@app.command()
def delete(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    view: str = typer.Option(..., "--view", help="Saved view whose samples to delete (e.g. wrong_identity)."),
) -> None:
    """Delete a saved view's samples in bulk, reversibly (moved to DATASET-trash; `faceset undo` restores)."""
    dataset = dataset_of(dataset_arg, dataset_opt)
    from curate.dataset.store import load_dataset
    from curate.dataset.trash import delete_reversibly

    with user_errors(), busy("moving to the trash"):
        ds = load_dataset(dataset)
        batch = delete_reversibly(ds, _saved_view(ds, view), reason=f"view {view}")
    typer.echo(f"deleted {batch['count']} samples (batch {batch['id']}); undo with: faceset undo {dataset}")


@app.command()
def move(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    to: Subset = typer.Option(..., "--subset", "-s", help="The subset to move the faces to (A or B)."),
    view: str | None = typer.Option(None, "--view", help="Move this saved view's faces."),
    source: list[Path] | None = typer.Option(None, "--source", help="Move the faces of this video or image (repeatable)."),
) -> None:
    """Move faces to the other subset: a saved view's, or every face of some sources (extracted under the wrong -s)."""
    dataset = dataset_of(dataset_arg, dataset_opt)
    from fiftyone import ViewField as F

    from curate.core.media import printable
    from curate.dataset.store import load_dataset
    from curate.dataset.subsets import set_subset

    with user_errors(ValueError):
        ds = load_dataset(dataset)
        if bool(view) == bool(source):
            raise ValueError("give either --view NAME or --source FILE (repeatable)")
        if view:
            faces = _saved_view(ds, view)
            what = f"view {view}"
        else:
            paths = [printable(Path(p).absolute()) for p in source or []]
            faces = ds.match(F("source").is_in(paths))
            unknown = sorted(set(paths) - set(faces.distinct("source")))
            if unknown:
                raise ValueError(f"no faces of {', '.join(unknown)} in {dataset!r}")
            what = f"{len(paths)} source(s)"
        total = len(faces)  # before the move: a view may select by subset
        moved = set_subset(faces, subset_of(to))
    typer.echo(f"{what}: {total} faces; moved to subset {subset_of(to)}: {moved} ({total - moved} were there "
               "already); run `faceset identity` and `faceset gaps` again for the subsets that changed")


def _saved_view(ds: Any, name: str) -> Any:
    """A dataset's saved view, or DatasetNotFound naming the views it has."""
    from curate.dataset.store import DatasetNotFound

    if not ds.has_saved_view(name):
        raise DatasetNotFound(f"no saved view {name!r} (views: {', '.join(ds.list_saved_views()) or 'none'})")
    return ds.load_saved_view(name)


@app.command()
def undo(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    batch: str | None = typer.Option(None, "--batch", help="Batch id to restore (default: the latest)."),
) -> None:
    """Restore the latest (or a named) batch of deleted samples."""
    dataset = dataset_of(dataset_arg, dataset_opt)
    from curate.dataset.trash import undo as run_undo

    with user_errors(LookupError):
        restored = run_undo(dataset, batch)
    typer.echo(f"restored {restored['count']} samples (batch {restored['id']}, {restored['reason']})")


@app.command()
def dedupe(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    subset: Subset | None = typer.Option(None, "--subset", "-s", help="Only this subset (default: each subset on its own)."),
    method: DedupeMethod = typer.Option(DEDUPE.method, "--method", help="crop: crop hash + identity (default); brain: fiftyone.brain near-duplicates."),
    threshold: int | None = typer.Option(None, "--threshold", min=0, max=32, help=f"crop: max differing hash bits (default {DEDUPE.max_bits})."),
    max_distance: float = typer.Option(DEDUPE.max_distance, "--max-distance", help="crop: max identity-embedding distance."),
    pose_tolerance: float = typer.Option(DEDUPE.pose_tolerance, "--pose-tolerance", help="crop: max yaw/pitch difference in degrees."),
    brain_threshold: float = typer.Option(DEDUPE.brain_threshold, "--brain-threshold", help="brain: cosine distance threshold."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only report groups and save the 'near_duplicates' view."),
) -> None:
    """Group near-duplicate faces, keep the sharpest of each group, delete the rest reversibly."""
    dataset = dataset_of(dataset_arg, dataset_opt)
    from curate.ops.dedupe import DEFAULT_MAX_BITS, DUPLICATES_VIEW, REMOVE_VIEW, dataset_dedupe

    with user_errors(ValueError), busy("near-duplicates"):
        results, batch = dataset_dedupe(
            dataset, subset_of(subset), method.value, max_bits=DEFAULT_MAX_BITS if threshold is None else threshold,
            max_distance=max_distance, pose_tolerance=pose_tolerance, brain_threshold=brain_threshold, dry_run=dry_run,
        )
    from curate.ops.identity import left_out_line
    for sub, groups in results.items():
        typer.echo(f"subset {sub}: {len(groups.labels)} faces, {groups.groups} near-duplicate groups, "
                   f"{groups.removable} faces {'to remove' if dry_run else 'removed'}"
                   + (f"; {left_out_line(groups.left_out)}" if groups.left_out else ""))
    typer.echo(f"saved views: {DUPLICATES_VIEW} (each group whole, its kept face first), {REMOVE_VIEW} (the faces "
               f"{'to remove' if dry_run else 'removed'})")
    if batch:
        typer.echo(f"deleted {batch['count']} samples (batch {batch['id']}); undo with: faceset undo {dataset}")


@app.command("filter")
def filter_command(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    where: list[str] | None = typer.Option(None, "--where", "-w", help="Condition, e.g. 'yaw>30', 'abs(pitch)<10', 'blur>100' (repeatable, all must hold)."),
    expression: list[Expression] | None = typer.Option(None, "--expression", "-e", help="Expression label (repeatable, any of)."),
    subset: Subset | None = typer.Option(None, "--subset", "-s", help="A or B."),
    sort_by: str | None = typer.Option(None, "--sort-by", help="Field to sort by."),
    reverse: bool = typer.Option(False, "--reverse", help="Sort descending."),
    save_view: str | None = typer.Option(None, "--save-view", help="Save the result as this FiftyOne view."),
) -> None:
    """Filter faces by field conditions and expression; optionally save the result as a FiftyOne view."""
    dataset = dataset_of(dataset_arg, dataset_opt)
    from fiftyone import ViewField as F

    from curate.dataset.store import load_dataset
    from curate.dataset.views import filter_view

    with user_errors(ValueError):
        ds = load_dataset(dataset)
        view = filter_view(ds, where or [], [e.value for e in expression or []], subset_of(subset), sort_by, reverse)
        count = len(view)
        if save_view:
            ds.save_view(save_view, view, overwrite=True)
    scope = ds.match(F("subset") == subset_of(subset)) if subset else ds
    typer.echo(f"{count} of {len(scope)} faces" + (f" of subset {subset_of(subset)}" if subset else "") + " match")
    for s in view.limit(5).select_fields(["source", "frame", "yaw", "pitch", "expression"]):
        typer.echo(f"  {s.source}#{s.frame} yaw {s.yaw:.1f} pitch {s.pitch:.1f} {s.expression.label if s.expression else ''}")
    if save_view:
        typer.echo(f"saved view: {save_view}")


@app.command()
def umap(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    subset: Subset | None = typer.Option(None, "--subset", "-s", help="Only this subset (default: A and B together)."),
    brain_key: str = typer.Option(UMAP.brain_key, "--brain-key", help="Name of the brain run."),
    neighbors: int = typer.Option(UMAP.neighbors, "--neighbors", min=2, help="UMAP n_neighbors."),
    out: Path | None = typer.Option(None, "--out", help="PNG path (default: the dataset's reports folder)."),
) -> None:
    """UMAP of the identity embeddings (fiftyone.brain visualization run for the App) and a scatter PNG."""
    dataset = dataset_of(dataset_arg, dataset_opt)
    from curate.ops.umap import compute_umap

    with user_errors(ValueError):
        _, path = compute_umap(dataset, brain_key, subset_of(subset), neighbors, out=out)
    typer.echo(f"brain run: {brain_key} (App: Embeddings panel)\nplot: {path}")


@app.command()
def export(
    dataset_arg: str | None = typer.Argument(None, metavar="DATASET", help="Dataset name (or --dataset/-d NAME)."),
    dataset_opt: str | None = typer.Option(None, "--dataset", "-d", help="Dataset name."),
    subset: Subset = typer.Option(Subset.A, "--subset", "-s", help="A or B."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (what `faceset train` reads)."),
    n: int | None = typer.Option(None, "--count", "--n", min=1, help="Faces to export (default: all; --n is the old name)."),
    match: Subset | None = typer.Option(None, "--match", help="Follow this subset's pose/expression coverage (e.g. B)."),
    fmt: ExportFormat = typer.Option(EXPORT.fmt, "--format", help="folder, faceswap (alignments.fsa + PNGs) or dfl (aligned JPGs)."),
    size: int | None = typer.Option(None, "--size", min=32, help="Resize crops to this side (px)."),
    seed: int = typer.Option(EXPORT.seed, "--seed", help="Seed of the tie-breaking shuffle (same seed, same export)."),
    view: str | None = typer.Option(None, "--view", help="Export from this saved view only."),
    no_expression: bool = typer.Option(False, "--no-expression", help="Balance over pose only."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a previous export in --out (anything else there is refused)."),
    face_type: DflFaceType = typer.Option(EXPORT.face_type, "--face-type", help="dfl: DeepFaceLab face type of the crops."),
    mask: str = typer.Option(EXPORT.mask, "--mask", help="Mask field to write (folder: PNG alpha, faceswap: 'custom' mask, "
                             "dfl: xseg_mask): auto = mask_fixed, else mask_learned, else none; or a field; or none."),
    cluster: str | None = typer.Option(None, "--cluster", help="Dask scheduler address (default $DASK_SCHEDULER_ADDRESS): render the faces on its workers."),
    all_faces: bool = typer.Option(False, "--all-faces", help="Also export non-face detections and faces of unsure or other identity."),
) -> None:
    """Export a balanced, curated face-set with manifest (JSON/CSV) and distribution PNG."""
    dataset = dataset_of(dataset_arg, dataset_opt)
    from curate.export.balanced import export_faces

    with user_errors(ValueError, RuntimeError):
        result = export_faces(dataset, subset_of(subset), out, n, subset_of(match), fmt.value, size, seed, not no_expression, view,
                              overwrite=overwrite, face_type=face_type.value, mask=mask, cluster=cluster,
                              all_faces=all_faces)
    from curate.ops.identity import left_out_line
    typer.echo(f"exported {result.count} faces ({result.format}) to {result.out}\nmanifest: {result.manifest}\ndistribution: {result.plot}")
    if n and result.count < n:
        typer.echo(f"asked for {n} faces: only {result.count} usable faces in subset {subset_of(subset)}"
                   + (f" (view {view})" if view else ""))
    if result.left_out:
        typer.echo(left_out_line(result.left_out) + " (--all-faces exports them too)")


@app.command("import-faceswap")
def import_faceswap_command(
    alignments: Path = typer.Argument(..., help="faceswap alignments file (.fsa)."),
    frames: Path = typer.Option(..., "--frames", help="Folder of the frames (or the video) the alignments describe."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset to add the faces to."),
    subset: Subset = typer.Option(Subset.A, "--subset", "-s", help="A or B."),
) -> None:
    """Import a faceswap alignments file (v1 or v2 layout) with its frames; the pickle is read safely."""
    from curate.interop.importing import import_faceswap
    from curate.interop.safe_pickle import FormatError

    with user_errors(FormatError, OSError):
        summary = import_faceswap(dataset, subset_of(subset), alignments, frames)
    say_summary(summary)


@app.command("import-dfl")
def import_dfl_command(
    folder: Path = typer.Argument(..., help="Folder of DeepFaceLab aligned JPGs."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset to add the faces to."),
    subset: Subset = typer.Option(Subset.A, "--subset", "-s", help="A or B."),
    frames: Path | None = typer.Option(None, "--frames", help="Folder of the source frames (else the aligned JPGs are used)."),
) -> None:
    """Import DeepFaceLab aligned JPGs (metadata read with the restricted unpickler)."""
    from curate.interop.importing import import_dfl
    from curate.interop.safe_pickle import FormatError

    with user_errors(FormatError, OSError):
        summary = import_dfl(dataset, subset_of(subset), folder, frames)
    say_summary(summary)
