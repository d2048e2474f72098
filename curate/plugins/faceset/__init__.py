"""FiftyOne App plugin of faceset: the curation commands as operators (run `faceset app` to register it)."""
from __future__ import annotations

from typing import Any

import fiftyone.operators as foo
from fiftyone.operators import types


def _subset_choice(inputs: types.Object, name: str = "subset", default: str = "A", label: str = "Subset") -> None:
    choices = types.RadioGroup()
    choices.add_choice("A", label="A (face to replace)")
    choices.add_choice("B", label="B (face to paste in)")
    inputs.enum(name, choices.values(), default=default, label=label, view=choices)


def _summary_output() -> types.Property:
    outputs = types.Object()
    outputs.str("summary", label="Result", view=types.MarkdownView())
    return types.Property(outputs)


class GapReport(foo.Operator):
    """Pose × expression coverage gaps between A and B; opens the view of the A faces B lacks."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(name="gap_report", label="faceset: A/B coverage gaps")

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        inputs.int("min_count", default=3, label="Faces a bin needs in one set to count as a gap in the other")
        inputs.bool("by_expression", default=False, label="Bin by expression too")
        return types.Property(inputs, view=types.View(label="Coverage gaps between A and B"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        from curate.gaps import DEFAULT_PITCH_EDGES, DEFAULT_YAW_EDGES, dataset_gaps

        report, paths, views = dataset_gaps(
            ctx.dataset.name, DEFAULT_YAW_EDGES, DEFAULT_PITCH_EDGES,
            by_expression=bool(ctx.params.get("by_expression")), min_count=int(ctx.params.get("min_count", 3)),
        )
        lacks_b = [v for v in views if v.startswith("gap: B lacks")]
        if lacks_b:
            ctx.ops.set_view(name=lacks_b[0])
        lines = [f"B covers **{report.coverage['B_covers_A']:.0%}** of A, A covers **{report.coverage['A_covers_B']:.0%}** of B", ""]
        lines += [f"- {g['lacking']} {g['kind']}: yaw {g['yaw']}, pitch {g['pitch']}" for g in report.gaps[:20]]
        lines += ["", f"heatmap: `{paths['png']}`", f"saved views: {', '.join(views) or 'none'}"]
        return {"summary": "\n".join(lines), "views": views, "heatmap": str(paths["png"])}

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


class DrawMesh(foo.Operator):
    """Draw the stored 468-point face mesh of the selected faces (or the current view) as keypoints."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(name="draw_mesh", label="faceset: draw the face mesh")

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        inputs.int("limit", default=1000, label="At most this many faces (the selection, else the current view)")
        return types.Property(inputs, view=types.View(label="Draw the face mesh"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        from curate.mesh_view import MESH_KEYPOINTS, draw_mesh

        view = ctx.dataset.select(ctx.selected) if ctx.selected else ctx.view
        count = draw_mesh(view, limit=int(ctx.params.get("limit", 1000)))
        ctx.ops.reload_dataset()
        return {"summary": f"drew the mesh of **{count}** faces in the `{MESH_KEYPOINTS}` field", "count": count}

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


class IdentityReview(foo.Operator):
    """Score a subset against its identity and open the faces sorted worst-first."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(name="identity_review", label="faceset: identity review")

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        _subset_choice(inputs)
        inputs.float("threshold", default=0.35, label="Max distance to the identity")
        return types.Property(inputs, view=types.View(label="Identity review"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        from curate.identity import dataset_identity

        subset = ctx.params.get("subset", "A")
        scores, views = dataset_identity(ctx.dataset.name, subset, threshold=ctx.params.get("threshold"), review=True)
        ctx.ops.set_view(name="identity_review")
        flagged = int((~scores.ok).sum())
        summary = (f"subset {subset}: {len(scores.ok)} faces, **{flagged}** flagged as another identity; "
                   f"delete them with `faceset delete {ctx.dataset.name} --view wrong_identity`")
        return {"summary": summary, "flagged": flagged, "views": views}

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


class DedupeFaces(foo.Operator):
    """Group near-duplicate faces, keep the sharpest; dry run by default, deletion is undoable."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(name="dedupe_faces", label="faceset: remove near-duplicates")

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        _subset_choice(inputs)
        inputs.int("threshold", default=6, label="Max differing crop-hash bits")
        inputs.bool("dry_run", default=True, label="Dry run (only save the 'near_duplicates' view)")
        return types.Property(inputs, view=types.View(label="Near-duplicates"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        from curate.dedupe import DUPLICATES_VIEW, dataset_dedupe

        dry = bool(ctx.params.get("dry_run", True))
        results, batch = dataset_dedupe(
            ctx.dataset.name, ctx.params.get("subset", "A"), max_bits=int(ctx.params.get("threshold", 6)),
            dry_run=dry, progress=False,
        )
        groups = next(iter(results.values()))
        if dry:
            ctx.ops.set_view(name=DUPLICATES_VIEW)
        else:
            ctx.ops.reload_dataset()
        verb = "would remove" if dry else f"removed (undo: `faceset undo {ctx.dataset.name}`)"
        return {"summary": f"{groups.groups} groups; {verb} {groups.removable} faces", "removed": 0 if dry else batch["count"]}

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


class ExportFaces(foo.Operator):
    """Balanced export of a subset to a folder (plain, faceswap or DeepFaceLab)."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(name="export_faces", label="faceset: balanced export")

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        _subset_choice(inputs)
        inputs.str("out", required=True, label="Output folder")
        inputs.int("n", default=0, label="Faces to export (0 = all)")
        inputs.bool("match_other", default=True, label="Follow the other subset's pose coverage")
        formats = types.Dropdown()
        for name in ("folder", "faceswap", "dfl"):
            formats.add_choice(name, label=name)
        inputs.enum("format", formats.values(), default="folder", label="Format", view=formats)
        inputs.bool("overwrite", default=False, label="Replace a previous export in that folder")
        return types.Property(inputs, view=types.View(label="Balanced export"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        from curate.export import export_faces

        subset = ctx.params.get("subset", "A")
        other = "B" if subset == "A" else "A"
        result = export_faces(
            ctx.dataset.name, subset, ctx.params["out"], n=int(ctx.params.get("n") or 0) or None,
            match=other if ctx.params.get("match_other", True) else None, fmt=ctx.params.get("format", "folder"),
            progress=False, overwrite=bool(ctx.params.get("overwrite", False)),
        )
        return {"summary": f"exported {result.count} faces to `{result.out}` (manifest `{result.manifest}`)", "count": result.count}

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


def register(p: Any) -> None:
    """Register faceset's operators with FiftyOne."""
    p.register(GapReport)
    p.register(IdentityReview)
    p.register(DrawMesh)
    p.register(DedupeFaces)
    p.register(ExportFaces)
