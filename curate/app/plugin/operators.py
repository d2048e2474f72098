"""The App plugin's operators: curation of the faces you select and the long jobs (gaps, identity, duplicates,
export, UMAP, mesh). Each reads the App's context and calls the library; their defaults are the library's."""
from __future__ import annotations

from typing import Any

import fiftyone.operators as foo
from fiftyone.operators import types

from curate.app.mesh_view import MESH_KEYPOINTS, draw_mesh
from curate.app.review import duplicate_review, identity_review, trash_selection, undo_trash
from curate.app.selection import progress_callback, target
from curate.core.defaults import keyword_defaults
from curate.dataset.subsets import set_subset
from curate.dataset.trash import list_batches
from curate.export import FORMATS
from curate.export.balanced import export_faces
from curate.ops.dedupe import dataset_dedupe
from curate.ops.gaps import DEFAULT_PITCH_EDGES, DEFAULT_YAW_EDGES, dataset_gaps
from curate.ops.keep import mark_keep
from curate.ops.umap import compute_umap

# the defaults of the inputs: the library functions' own (as the CLI's)
GAPS, DEDUPE, EXPORT, UMAP = (keyword_defaults(f) for f in (dataset_gaps, dataset_dedupe, export_faces, compute_umap))

SELECTION_HELP = "the faces selected in the grid, else the current view"


def _subset_choice(inputs: types.Object, name: str = "subset", default: str = "A", label: str = "Subset") -> None:
    choices = types.RadioGroup()
    choices.add_choice("A", label="A (face to replace)")
    choices.add_choice("B", label="B (face to paste in)")
    inputs.enum(name, choices.values(), default=default, label=label, view=choices)


def _summary_output() -> types.Property:
    outputs = types.Object()
    outputs.str("summary", label="Result", view=types.MarkdownView())
    return types.Property(outputs)


def _config(name: str, label: str, delegable: bool = False, **kw: Any) -> foo.OperatorConfig:
    """Operator config; long jobs may run delegated (FiftyOne's delegated operations) so the App stays responsive."""
    return foo.OperatorConfig(name=name, label=label, dynamic=True, allow_immediate_execution=True,
                              allow_delegated_execution=delegable, default_choice_to_delegated=False, **kw)


# --- curation on the selection --------------------------------------------------------------------------------

class TrashFaces(foo.Operator):
    """Move the selected faces (or the current view) to the trash, as one batch that undo restores."""

    @property
    def config(self) -> foo.OperatorConfig:
        return _config("trash_faces", "faceset: move selected faces to trash", light_icon="delete", dark_icon="delete")

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        n = len(ctx.selected) if ctx.selected else len(ctx.view)
        what = "selected faces" if ctx.selected else "faces of the current view"
        inputs.md(f"Move **{n}** {what} to the trash (undo: *faceset: undo last trash*, or `faceset undo`).", name="msg")
        inputs.str("reason", default="picked in the App", label="Reason (kept with the batch)")
        return types.Property(inputs, view=types.View(label="Move to trash"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        return trash_selection(ctx, str(ctx.params.get("reason") or "picked in the App"))

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


class UndoTrash(foo.Operator):
    """Restore the last (or a chosen) batch of trashed faces, ids and fields unchanged."""

    @property
    def config(self) -> foo.OperatorConfig:
        return _config("undo_trash", "faceset: undo last trash", light_icon="restore_from_trash",
                       dark_icon="restore_from_trash")

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        batches = list_batches(ctx.dataset.name)
        if not batches:
            inputs.md("Nothing in the trash.", name="msg")
            return types.Property(inputs, view=types.View(label="Undo"))
        choices = types.Dropdown()
        for b in reversed(batches):
            choices.add_choice(b["id"], label=f"{b['id']}: {b['count']} faces ({b['reason']})")
        inputs.enum("batch", choices.values(), default=batches[-1]["id"], label="Batch to restore", view=choices)
        return types.Property(inputs, view=types.View(label="Undo a trash batch"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        return undo_trash(ctx, ctx.params.get("batch"))

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


class SetSubset(foo.Operator):
    """Put the selected faces (or the current view) in subset A or B."""

    @property
    def config(self) -> foo.OperatorConfig:
        return _config("set_subset", "faceset: move selected faces to subset A/B")

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        inputs.md(f"Acts on {SELECTION_HELP}: **{len(target(ctx))}** faces.", name="msg")
        _subset_choice(inputs, label="Move them to")
        return types.Property(inputs, view=types.View(label="Set subset"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        subset = ctx.params.get("subset", "A")
        n = set_subset(target(ctx), subset)
        ctx.ops.clear_selected_samples()
        ctx.ops.reload_dataset()
        return {"summary": f"moved **{n}** faces to subset {subset}", "count": n}

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


class KeepFaces(foo.Operator):
    """Mark the selected faces as checked by eye: identity review and dedupe never flag or remove them."""

    @property
    def config(self) -> foo.OperatorConfig:
        return _config("keep_faces", "faceset: keep selected faces")

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        inputs.md(f"Acts on {SELECTION_HELP}: **{len(target(ctx))}** faces.", name="msg")
        inputs.bool("keep", default=True, label="Keep (untick to remove the mark)")
        return types.Property(inputs, view=types.View(label="Keep faces"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        keep = bool(ctx.params.get("keep", True))
        n = mark_keep(target(ctx), keep)
        ctx.ops.clear_selected_samples()
        ctx.ops.reload_dataset()
        return {"summary": f"{'marked' if keep else 'unmarked'} **{n}** faces as keep", "count": n}

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


# --- the long jobs --------------------------------------------------------------------------------------------

class GapReport(foo.Operator):
    """Pose x expression coverage gaps between A and B as a JSON report, heatmap PNG and saved views."""

    @property
    def config(self) -> foo.OperatorConfig:
        return _config("gap_report", "faceset: A/B coverage gaps", delegable=True)

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        inputs.int("min_count", default=GAPS.min_count, label="Faces a bin needs in one set to count as a gap in the other")
        inputs.bool("by_expression", default=False, label="Bin by expression too")
        return types.Property(inputs, view=types.View(label="Coverage gaps between A and B"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        ctx.set_progress(progress=0.0, label="counting faces per cell")
        report, paths, views = dataset_gaps(
            ctx.dataset.name, DEFAULT_YAW_EDGES, DEFAULT_PITCH_EDGES,
            by_expression=bool(ctx.params.get("by_expression")), min_count=int(ctx.params.get("min_count", GAPS.min_count)),
        )
        lacks_b = [v for v in views if v.startswith("gap: B lacks")]
        if lacks_b and not ctx.delegated:
            ctx.ops.set_view(name=lacks_b[0])
        cov = report.coverage
        lines = [f"B covers **{cov['B_covers_A']:.0%}** of A ({cov['B_covers_A_flipped']:.0%} with flips), "
                 f"A covers **{cov['A_covers_B']:.0%}** of B ({cov['A_covers_B_flipped']:.0%} with flips)", ""]
        lines += [f"- {g['lacking']} {g['kind']}: yaw {g['yaw']}, pitch {g['pitch']}"
                  + (" (flipping fills it)" if g["flip_fills"] else "") for g in report.gaps[:20]]
        lines += ["", f"heatmap: `{paths['png']}`", f"saved views: {', '.join(views) or 'none'}"]
        return {"summary": "\n".join(lines), "views": views, "heatmap": str(paths["png"])}

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


class IdentityReview(foo.Operator):
    """Score a subset against its identity; open its faces worst-first with the wrong people pre-selected."""

    @property
    def config(self) -> foo.OperatorConfig:
        return _config("identity_review", "faceset: identity review", delegable=True)

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        _subset_choice(inputs)
        inputs.float("threshold", label="Max linkage distance between tracks of one person",
                     description="empty: the measured default of the dataset's embedding (as the CLI)")
        return types.Property(inputs, view=types.View(label="Identity review"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        return identity_review(ctx, ctx.params.get("subset", "A"), ctx.params.get("threshold"))

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


class DedupeFaces(foo.Operator):
    """Group near-duplicate faces; dry run shows each group, kept face first, with the removable ones selected."""

    @property
    def config(self) -> foo.OperatorConfig:
        return _config("dedupe_faces", "faceset: remove near-duplicates", delegable=True)

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        _subset_choice(inputs)
        inputs.int("threshold", default=DEDUPE.max_bits, label="Max differing crop-hash bits")
        inputs.bool("dry_run", default=True, label="Dry run: show the groups (kept face first, the rest selected)")
        return types.Property(inputs, view=types.View(label="Near-duplicates"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        return duplicate_review(ctx, ctx.params.get("subset", "A"), int(ctx.params.get("threshold", DEDUPE.max_bits)),
                                bool(ctx.params.get("dry_run", True)))

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


class ExportFaces(foo.Operator):
    """Balanced export of a subset to a folder (plain, faceswap or DeepFaceLab)."""

    @property
    def config(self) -> foo.OperatorConfig:
        return _config("export_faces", "faceset: balanced export", delegable=True)

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        _subset_choice(inputs)
        inputs.str("out", required=True, label="Output folder")
        inputs.int("n", default=0, label="Faces to export (0 = all)")
        inputs.bool("match_other", default=True, label="Follow the other subset's pose coverage")
        formats = types.Dropdown()
        for name in FORMATS:
            formats.add_choice(name, label=name)
        inputs.enum("format", formats.values(), default=EXPORT.fmt, label="Format", view=formats)
        inputs.bool("overwrite", default=False, label="Replace a previous export in that folder")
        return types.Property(inputs, view=types.View(label="Balanced export"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        subset = ctx.params.get("subset", "A")
        other = "B" if subset == "A" else "A"
        result = export_faces(
            ctx.dataset.name, subset, ctx.params["out"], n=int(ctx.params.get("n") or 0) or None,
            match=other if ctx.params.get("match_other", True) else None, fmt=ctx.params.get("format", EXPORT.fmt),
            progress=False, overwrite=bool(ctx.params.get("overwrite", False)), on_progress=progress_callback(ctx),
        )
        return {"summary": f"exported {result.count} faces to `{result.out}` (manifest `{result.manifest}`)", "count": result.count}

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


class UmapFaces(foo.Operator):
    """UMAP of the identity embeddings as a brain run (open it in the App's Embeddings panel)."""

    @property
    def config(self) -> foo.OperatorConfig:
        return _config("umap_faces", "faceset: UMAP of identity embeddings", delegable=True)

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        inputs.str("brain_key", default=UMAP.brain_key, label="Brain key")
        inputs.int("neighbors", default=UMAP.neighbors, label="UMAP neighbours")
        return types.Property(inputs, view=types.View(label="UMAP of identity embeddings"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        key = ctx.params.get("brain_key") or UMAP.brain_key
        ctx.set_progress(progress=0.0, label="fitting UMAP")
        results, png = compute_umap(ctx.dataset.name, brain_key=key, neighbors=int(ctx.params.get("neighbors") or UMAP.neighbors),
                                    progress=False)
        if not ctx.delegated:
            ctx.ops.reload_dataset()
        return {"summary": f"brain run `{key}`: {len(results.points)} faces; open the Embeddings panel. PNG `{png}`",
                "count": len(results.points), "png": str(png)}

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


class DrawMesh(foo.Operator):
    """Draw the stored 468-point face mesh of the selected faces (or the current view) as keypoints."""

    @property
    def config(self) -> foo.OperatorConfig:
        return _config("draw_mesh", "faceset: draw the face mesh")

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        inputs.int("limit", default=1000, label="At most this many faces (the selection, else the current view)")
        return types.Property(inputs, view=types.View(label="Draw the face mesh"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        count = draw_mesh(target(ctx), limit=int(ctx.params.get("limit", 1000)))
        ctx.ops.reload_dataset()
        return {"summary": f"drew the mesh of **{count}** faces in the `{MESH_KEYPOINTS}` field", "count": count}

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()
