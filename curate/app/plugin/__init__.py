"""FiftyOne App plugin of faceset: the A/B coverage panel, curation of the faces you select, and the long jobs.

`faceset app DATASET` registers it and opens the App with the panel beside the grid. The logic lives in
``curate.app.coverage`` and the curation modules; these classes only read the App's context and answer it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fiftyone.operators as foo
from fiftyone.operators import types

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


def _target(ctx: Any) -> Any:
    """The faces an operator acts on: the grid's selection, else the current view."""
    return ctx.dataset.select(ctx.selected) if ctx.selected else ctx.view


def _progress(ctx: Any):
    return lambda fraction, label: ctx.set_progress(progress=float(fraction), label=label)


PENDING_SELECTION = "pending_selection"
SYNC_INTERVAL_MS = 700  # the panel's timer: how often it checks that a review's selection reached the grid
SYNC_CONFIRMATIONS = 2  # consecutive checks that must see the selection in the grid before the request is done
SYNC_TIMEOUT_S = 45.0  # a view that never loads (the user moved on) ends the request


def select_after_view_change(ctx: Any, ids: list[str], view: Any) -> None:
    """Select faces in the App once the view just set has loaded (a view change clears the selection).

    Selected now too; the request waits in the dataset's execution store, and the coverage panel's timer
    (and its view/selection events) select the faces again until the App shows ``view`` with exactly them
    selected on consecutive checks. The panel also knows ``view`` as a review's, not a user's.
    """
    import time

    from curate.app.coverage import stages_key

    ctx.ops.set_selected_samples(ids)
    request = {"ids": list(ids), "view": stages_key(view), "since": time.time(), "seen": 0}
    ctx.store("faceset").set(PENDING_SELECTION, request, ttl=300)


def pending_selection(ctx: Any) -> dict[str, Any] | None:
    """The review's selection still waiting to reach the App's grid, if any."""
    request = ctx.store("faceset").get(PENDING_SELECTION)
    return request if isinstance(request, dict) and request.get("ids") else None


def apply_pending_selection(ctx: Any) -> bool:
    """One check of a waiting review selection; returns whether it still waits.

    Until the App reports the review's view nothing is sent (the view's load would clear it again). On that
    view, a selection that differs is sent again; one seen ``SYNC_CONFIRMATIONS`` times in a row is done, so a
    user who changes the selection afterwards is not overruled.
    """
    import time

    from curate.app.coverage import stages_key

    request = pending_selection(ctx)
    if request is None:
        return False
    store = ctx.store("faceset")
    if time.time() - float(request.get("since", 0)) > SYNC_TIMEOUT_S:
        store.delete(PENDING_SELECTION)
        return False
    if stages_key(ctx.view) != request.get("view"):
        return True
    if set(ctx.selected or []) == set(request["ids"]):
        request["seen"] = int(request.get("seen", 0)) + 1
        if request["seen"] >= SYNC_CONFIRMATIONS:
            store.delete(PENDING_SELECTION)
            return False
    else:
        request["seen"] = 0
        ctx.ops.set_selected_samples(request["ids"])
    store.set(PENDING_SELECTION, request, ttl=300)
    return True


def trash_selection(ctx: Any, reason: str = "picked in the App") -> dict[str, Any]:
    """Trash the App's selection (else its view) as one undoable batch; clears the selection."""
    from curate.app.coverage import trash_faces

    target = _target(ctx)
    ids = target.values("id")
    batch = trash_faces(target, reason)
    ctx.ops.clear_selected_samples()
    ctx.ops.reload_dataset()
    return {"summary": f"moved **{batch['count']}** faces to the trash (batch `{batch['id']}`)",
            "count": batch["count"], "batch": batch["id"], "ids": ids}


def undo_trash(ctx: Any, batch_id: str | None = None) -> dict[str, Any]:
    """Restore the last (or the named) trash batch of the App's dataset."""
    from curate.dataset.trash import undo

    batch = undo(ctx.dataset.name, batch_id)
    ctx.ops.reload_dataset()
    return {"summary": f"restored **{batch['count']}** faces (batch `{batch['id']}`: {batch['reason']})",
            "count": batch["count"], "batch": batch["id"]}


def identity_review(ctx: Any, subset: str, threshold: float | None = None) -> dict[str, Any]:
    """Score a subset's identity; in the App, show it worst-first with the faces of other people selected."""
    from curate.ops.identity import dataset_identity
    from curate.app.coverage import flagged_identity

    ctx.set_progress(progress=0.0, label=f"scoring subset {subset}")
    _, views = dataset_identity(ctx.dataset.name, subset, threshold=threshold, review=True)
    view, flagged = flagged_identity(ctx.dataset.name, subset)
    if not ctx.delegated:
        ctx.ops.set_view(view)
        select_after_view_change(ctx, flagged, view)
    summary = (f"subset {subset}: {len(view)} faces, worst first; **{len(flagged)}** flagged as another person "
               f"are selected. Glance at them, then trash the selection.")
    return {"summary": summary, "flagged": len(flagged), "flagged_ids": flagged, "views": views}


def duplicate_review(ctx: Any, subset: str, max_bits: int = 6, dry_run: bool = True) -> dict[str, Any]:
    """Group near-duplicates; dry run shows each group kept face first with the others selected."""
    from curate.ops.dedupe import dataset_dedupe
    from curate.app.coverage import DUPLICATE_GROUPS_VIEW, duplicate_groups

    results, batch = dataset_dedupe(ctx.dataset.name, subset, max_bits=max_bits, dry_run=dry_run, progress=False,
                                    on_progress=_progress(ctx))
    groups = next(iter(results.values()))
    removable: list[str] = []
    if dry_run:
        view, removable = duplicate_groups(ctx.dataset.name, subset)
        ctx.dataset.save_view(DUPLICATE_GROUPS_VIEW, view, overwrite=True)
        if not ctx.delegated:
            ctx.ops.set_view(name=DUPLICATE_GROUPS_VIEW)
            select_after_view_change(ctx, removable, ctx.dataset.load_saved_view(DUPLICATE_GROUPS_VIEW))
    elif not ctx.delegated:
        ctx.ops.reload_dataset()
    verb = "would remove (selected: trash them to remove)" if dry_run else "removed (undo: *faceset: undo last trash*)"
    return {"summary": f"{groups.groups} groups, kept face first; {verb} **{groups.removable}** faces",
            "removed": 0 if dry_run else batch["count"], "removable_ids": removable}


# --- the A/B coverage panel ---------------------------------------------------------------------------------

SHOW_CLICKED, SHOW_BOTH = "the clicked set", "A and B"


class CoveragePanel(foo.Panel):
    """A and B side by side as yaw x pitch grids; gaps, thin cells and cells flipping fills are marked.

    Clicking a cell shows that cell's faces in the grid. The panel follows the App's view (the faces it
    counts are the current view's, except the cell views it sets itself) and refreshes when faces change.
    """

    @property
    def config(self) -> foo.PanelConfig:
        return foo.PanelConfig(
            name="coverage_panel", label="faceset: A/B coverage", icon="grid_on", surfaces="grid",
            help_markdown="Counts of A's and B's faces per yaw x pitch cell. Red: missing in this set, orange: thin, "
                          "blue dotted: the set's horizontally flipped faces fill it. Click a cell to see its faces.",
        )

    # state ------------------------------------------------------------------------------------------------
    @staticmethod
    def _settings(ctx: Any) -> dict[str, Any]:
        from curate.ops.gaps import DEFAULT_PITCH_EDGES, DEFAULT_YAW_EDGES

        state = ctx.panel.state
        return {
            "yaw_edges": tuple(state.get("yaw_edges") or DEFAULT_YAW_EDGES),
            "pitch_edges": tuple(state.get("pitch_edges") or DEFAULT_PITCH_EDGES),
            "expression": state.get("expression") or "all",
            "show": state.get("show") or SHOW_CLICKED,
            "min_count": int(state.get("min_count") or 3),
        }

    def _base(self, ctx: Any) -> Any:
        from curate.app.coverage import view_from_key

        return view_from_key(ctx.dataset, ctx.panel.state.get("base_view"))

    def _refresh(self, ctx: Any) -> None:
        from curate.app.coverage import coverage_figure, coverage_scores, data_stamp, view_coverage

        cfg = self._settings(ctx)
        base = self._base(ctx)
        report = view_coverage(base, cfg["yaw_edges"], cfg["pitch_edges"], cfg["min_count"])
        ctx.panel.state.figure = coverage_figure(report, cfg["expression"])
        ctx.panel.state.scores = coverage_scores(report, cfg["expression"])
        ctx.panel.state.expressions = report.expressions
        ctx.panel.state.stamp = data_stamp(base)

    def _refresh_if_changed(self, ctx: Any) -> None:
        from curate.app.coverage import data_stamp

        if data_stamp(self._base(ctx)) != ctx.panel.state.get("stamp"):
            self._refresh(ctx)

    # events -----------------------------------------------------------------------------------------------
    def on_load(self, ctx: Any) -> None:
        from curate.app.coverage import stages_key

        ctx.panel.state.base_view = stages_key(ctx.view)
        ctx.panel.state.shown_view = None
        ctx.panel.state.cell = None
        ctx.panel.state.error = None
        self._refresh(ctx)

    def on_change_dataset(self, ctx: Any) -> None:
        self.on_load(ctx)

    def on_change_view(self, ctx: Any) -> None:
        from curate.app.coverage import stages_key

        self._sync_selection(ctx)
        key = stages_key(ctx.view)
        shown = ctx.panel.state.get("shown_view")
        request = pending_selection(ctx)
        if shown == "review" or (request and key == request["view"]):  # a review's view, not the user's
            ctx.panel.state.shown_view = key
        elif key != shown:  # a view the user chose: it becomes what the panel counts
            ctx.panel.state.base_view = key
            ctx.panel.state.shown_view = None
            ctx.panel.state.cell = None
            self._refresh(ctx)
        else:
            self._refresh_if_changed(ctx)

    def on_change_selected(self, ctx: Any) -> None:
        self._sync_selection(ctx)  # a view change may clear a review's selection after it was set
        self._refresh_if_changed(ctx)  # curation operators clear the selection after they change faces

    def _sync_selection(self, ctx: Any) -> None:
        """Check a review's waiting selection; the panel's timer runs while one waits."""
        waiting = apply_pending_selection(ctx)
        if bool(ctx.panel.state.get("selection_sync")) != waiting:
            ctx.panel.state.selection_sync = waiting

    def on_selection_tick(self, ctx: Any) -> None:
        self._sync_selection(ctx)

    def on_refresh(self, ctx: Any) -> None:
        self._refresh(ctx)

    def on_edges(self, ctx: Any) -> None:
        from curate.ops.gaps import DEFAULT_PITCH_EDGES, DEFAULT_YAW_EDGES
        from curate.app.coverage import parse_edges

        which = ctx.params.get("which") or "yaw"
        default = DEFAULT_YAW_EDGES if which == "yaw" else DEFAULT_PITCH_EDGES
        try:
            edges = parse_edges(ctx.params.get("value"), default)
        except ValueError as exc:
            ctx.panel.state.error = f"{which} edges: {exc}"
            return
        ctx.panel.state.error = None
        ctx.panel.state.set(f"{which}_edges", list(edges))
        self._refresh(ctx)

    def on_yaw_edges(self, ctx: Any) -> None:
        ctx.params["which"] = "yaw"
        self.on_edges(ctx)

    def on_pitch_edges(self, ctx: Any) -> None:
        ctx.params["which"] = "pitch"
        self.on_edges(ctx)

    def on_expression(self, ctx: Any) -> None:
        ctx.panel.state.expression = ctx.params.get("value") or "all"
        self._refresh(ctx)

    def on_show(self, ctx: Any) -> None:
        ctx.panel.state.show = ctx.params.get("value") or SHOW_CLICKED

    def on_min_count(self, ctx: Any) -> None:
        ctx.panel.state.min_count = max(int(ctx.params.get("value") or 1), 1)
        self._refresh(ctx)

    def on_click_cell(self, ctx: Any) -> None:
        from curate.app.coverage import cell_view, stages_key

        params = ctx.params.get("data") if isinstance(ctx.params.get("data"), dict) else ctx.params
        trace, yaw_label, pitch_label = params.get("trace"), params.get("x"), params.get("y")
        if trace not in ("A", "B") or yaw_label is None or pitch_label is None:
            return
        cfg = self._settings(ctx)
        subsets = [trace] if cfg["show"] == SHOW_CLICKED else ["A", "B"]
        view = cell_view(self._base(ctx), cfg["yaw_edges"], cfg["pitch_edges"], subsets, str(yaw_label),
                         str(pitch_label), cfg["expression"])
        ctx.panel.state.shown_view = stages_key(view)
        ctx.panel.state.cell = {"subsets": "+".join(subsets), "yaw": yaw_label, "pitch": pitch_label,
                                "expression": cfg["expression"], "count": len(view)}
        ctx.ops.set_view(view)

    def _act(self, ctx: Any, action: Callable[[], dict[str, Any]]) -> None:
        """Run a curation action from a panel button: notify its result (or its error) and recount."""
        try:
            result = action()
        except (LookupError, ValueError) as exc:
            ctx.ops.notify(str(exc), variant="error")
            return
        ctx.panel.state.message = result["summary"]
        ctx.ops.notify(result["summary"].replace("**", ""), variant="success")
        self._refresh(ctx)

    def on_trash(self, ctx: Any) -> None:
        if not ctx.selected:
            ctx.ops.notify("select faces in the grid first (the tile's checkbox)", variant="warning")
            return
        self._act(ctx, lambda: trash_selection(ctx))

    def on_undo(self, ctx: Any) -> None:
        self._act(ctx, lambda: undo_trash(ctx))

    def on_review_a(self, ctx: Any) -> None:
        self._show_review(ctx, lambda: identity_review(ctx, "A"))

    def on_review_b(self, ctx: Any) -> None:
        self._show_review(ctx, lambda: identity_review(ctx, "B"))

    def on_duplicates_a(self, ctx: Any) -> None:
        self._show_review(ctx, lambda: duplicate_review(ctx, "A"))

    def on_duplicates_b(self, ctx: Any) -> None:
        self._show_review(ctx, lambda: duplicate_review(ctx, "B"))

    def _show_review(self, ctx: Any, action: Callable[[], dict[str, Any]]) -> None:
        """A review sets its own view: the panel keeps counting what it counted before."""
        self._act(ctx, action)
        ctx.panel.state.shown_view = "review"  # the next view change is the review's, not the user's
        ctx.panel.state.cell = None
        ctx.panel.state.selection_sync = pending_selection(ctx) is not None

    def on_show_all(self, ctx: Any) -> None:
        ctx.panel.state.shown_view = None
        ctx.panel.state.cell = None
        ctx.ops.set_view(self._base(ctx))

    # layout -----------------------------------------------------------------------------------------------
    def render(self, ctx: Any) -> types.Property:
        from curate.app.coverage import MARKS

        cfg = self._settings(ctx)
        state = ctx.panel.state
        scores = state.get("scores") or {}
        panel = types.Object()
        if scores:
            panel.md(
                f"**B covers {scores['B_covers_A']:.0%} of A** ({scores['B_covers_A_flipped']:.0%} with flipped faces) · "
                f"**A covers {scores['A_covers_B']:.0%} of B** ({scores['A_covers_B_flipped']:.0%} with flips) · "
                f"A {scores['A']} faces, B {scores['B']} faces; B's cells marked: "
                + ", ".join(f"{v} {k}" for k, v in scores["B_marks"].items()), name="scores_md")
        controls = panel.h_stack("controls", align_x="left", gap=2)
        controls.str("yaw_edges", label="yaw edges", default=",".join(f"{v:g}" for v in cfg["yaw_edges"]),
                     on_change=self.on_yaw_edges)
        controls.str("pitch_edges", label="pitch edges", default=",".join(f"{v:g}" for v in cfg["pitch_edges"]),
                     on_change=self.on_pitch_edges)
        controls.int("min_count", label="faces a cell needs", default=cfg["min_count"], on_change=self.on_min_count)
        exprs = ["all", *(state.get("expressions") or [])]
        controls.enum("expression", exprs, label="expression", default=cfg["expression"], on_change=self.on_expression,
                      view=types.DropdownView())
        controls.enum("show", [SHOW_CLICKED, SHOW_BOTH], label="a click shows", default=cfg["show"],
                      on_change=self.on_show, view=types.DropdownView())
        if state.get("error"):
            panel.md(f"**{state.get('error')}**", name="error_md")
        figure = state.get("figure")
        if figure:
            panel.plot("coverage", data=figure["data"], layout=figure["layout"], config={"displayModeBar": False},
                       on_click=self.on_click_cell)
        panel.md(" · ".join(f"{sym} {text}" for _, sym, text in MARKS.values()) + " (outlined red, orange, blue dotted)",
                 name="legend_md")
        cell = state.get("cell")
        actions = panel.h_stack("actions", align_x="left", gap=2)
        if cell:
            actions.md(f"showing **{cell['count']}** faces of {cell['subsets']} at yaw {cell['yaw']}, pitch {cell['pitch']}"
                       + (f", {cell['expression']}" if cell["expression"] != "all" else ""), name="cell_md")
            actions.btn("show_all", label="Back to all faces", icon="undo", on_click=self.on_show_all)
        actions.btn("refresh", label="Refresh", icon="refresh", on_click=self.on_refresh)
        review = panel.h_stack("review", align_x="left", gap=1)
        review.btn("review_a", label="Review identity A", icon="person_search", on_click=self.on_review_a)
        review.btn("review_b", label="Review identity B", icon="person_search", on_click=self.on_review_b)
        review.btn("duplicates_a", label="Duplicates A", icon="filter_none", on_click=self.on_duplicates_a)
        review.btn("duplicates_b", label="Duplicates B", icon="filter_none", on_click=self.on_duplicates_b)
        trash = panel.h_stack("trash_row", align_x="left", gap=1)
        trash.btn("trash", label="Trash selected", icon="delete", variant="contained", on_click=self.on_trash)
        trash.btn("undo", label="Undo trash", icon="restore_from_trash", on_click=self.on_undo)
        if state.get("message"):
            panel.md(state.get("message"), name="message_md")
        if state.get("selection_sync"):  # until a review's selection is seen in the grid
            panel.view("selection_timer", types.TimerView(interval=SYNC_INTERVAL_MS, on_interval=self.on_selection_tick))
        return types.Property(panel, view=types.GridView(orientation="vertical"))


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
        from curate.dataset.trash import list_batches

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
        inputs.md(f"Acts on {SELECTION_HELP}: **{len(_target(ctx))}** faces.", name="msg")
        _subset_choice(inputs, label="Move them to")
        return types.Property(inputs, view=types.View(label="Set subset"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        from curate.app.coverage import set_subset

        subset = ctx.params.get("subset", "A")
        n = set_subset(_target(ctx), subset)
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
        inputs.md(f"Acts on {SELECTION_HELP}: **{len(_target(ctx))}** faces.", name="msg")
        inputs.bool("keep", default=True, label="Keep (untick to remove the mark)")
        return types.Property(inputs, view=types.View(label="Keep faces"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        from curate.ops.keep import mark_keep

        keep = bool(ctx.params.get("keep", True))
        n = mark_keep(_target(ctx), keep)
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
        inputs.int("min_count", default=3, label="Faces a bin needs in one set to count as a gap in the other")
        inputs.bool("by_expression", default=False, label="Bin by expression too")
        return types.Property(inputs, view=types.View(label="Coverage gaps between A and B"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        from curate.ops.gaps import DEFAULT_PITCH_EDGES, DEFAULT_YAW_EDGES, dataset_gaps

        ctx.set_progress(progress=0.0, label="counting faces per cell")
        report, paths, views = dataset_gaps(
            ctx.dataset.name, DEFAULT_YAW_EDGES, DEFAULT_PITCH_EDGES,
            by_expression=bool(ctx.params.get("by_expression")), min_count=int(ctx.params.get("min_count", 3)),
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
        inputs.int("threshold", default=6, label="Max differing crop-hash bits")
        inputs.bool("dry_run", default=True, label="Dry run: show the groups (kept face first, the rest selected)")
        return types.Property(inputs, view=types.View(label="Near-duplicates"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        return duplicate_review(ctx, ctx.params.get("subset", "A"), int(ctx.params.get("threshold", 6)),
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
        for name in ("folder", "faceswap", "dfl"):
            formats.add_choice(name, label=name)
        inputs.enum("format", formats.values(), default="folder", label="Format", view=formats)
        inputs.bool("overwrite", default=False, label="Replace a previous export in that folder")
        return types.Property(inputs, view=types.View(label="Balanced export"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        from curate.export.balanced import export_faces

        subset = ctx.params.get("subset", "A")
        other = "B" if subset == "A" else "A"
        result = export_faces(
            ctx.dataset.name, subset, ctx.params["out"], n=int(ctx.params.get("n") or 0) or None,
            match=other if ctx.params.get("match_other", True) else None, fmt=ctx.params.get("format", "folder"),
            progress=False, overwrite=bool(ctx.params.get("overwrite", False)), on_progress=_progress(ctx),
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
        inputs.str("brain_key", default="faceset_umap", label="Brain key")
        inputs.int("neighbors", default=15, label="UMAP neighbours")
        return types.Property(inputs, view=types.View(label="UMAP of identity embeddings"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        from curate.ops.umap import compute_umap

        key = ctx.params.get("brain_key") or "faceset_umap"
        ctx.set_progress(progress=0.0, label="fitting UMAP")
        results, png = compute_umap(ctx.dataset.name, brain_key=key, neighbors=int(ctx.params.get("neighbors") or 15),
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
        from curate.app.mesh_view import MESH_KEYPOINTS, draw_mesh

        count = draw_mesh(_target(ctx), limit=int(ctx.params.get("limit", 1000)))
        ctx.ops.reload_dataset()
        return {"summary": f"drew the mesh of **{count}** faces in the `{MESH_KEYPOINTS}` field", "count": count}

    def resolve_output(self, ctx: Any) -> types.Property:
        return _summary_output()


OPERATORS = (CoveragePanel, TrashFaces, UndoTrash, SetSubset, KeepFaces, GapReport, IdentityReview, DedupeFaces,
             ExportFaces, UmapFaces, DrawMesh)


def register(p: Any) -> None:
    """Register faceset's panel and operators with FiftyOne."""
    for cls in OPERATORS:
        p.register(cls)
