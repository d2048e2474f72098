"""The A/B coverage panel of the App plugin: it reads the App's context and answers it; the counting lives in
:mod:`curate.app.coverage`, the curation in :mod:`curate.app.review`."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fiftyone.operators as foo
from fiftyone.operators import types

from curate.app.coverage import (
    MARKS,
    cell_view,
    coverage_figure,
    coverage_scores,
    data_stamp,
    parse_edges,
    stages_key,
    view_coverage,
    view_from_key,
)
from curate.app.review import duplicate_review, identity_review, trash_selection, undo_trash
from curate.app.selection import SYNC_INTERVAL_MS, apply_pending_selection, pending_selection
from curate.core.defaults import keyword_defaults
from curate.ops.gaps import DEFAULT_PITCH_EDGES, DEFAULT_YAW_EDGES, dataset_gaps

GAPS = keyword_defaults(dataset_gaps)
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
        state = ctx.panel.state
        return {
            "yaw_edges": tuple(state.get("yaw_edges") or DEFAULT_YAW_EDGES),
            "pitch_edges": tuple(state.get("pitch_edges") or DEFAULT_PITCH_EDGES),
            "expression": state.get("expression") or "all",
            "show": state.get("show") or SHOW_CLICKED,
            "min_count": int(state.get("min_count") or GAPS.min_count),
        }

    def _base(self, ctx: Any) -> Any:
        return view_from_key(ctx.dataset, ctx.panel.state.get("base_view"))

    def _refresh(self, ctx: Any) -> None:
        cfg = self._settings(ctx)
        base = self._base(ctx)
        report = view_coverage(base, cfg["yaw_edges"], cfg["pitch_edges"], cfg["min_count"])
        ctx.panel.state.figure = coverage_figure(report, cfg["expression"])
        ctx.panel.state.scores = coverage_scores(report, cfg["expression"])
        ctx.panel.state.expressions = report.expressions
        ctx.panel.state.stamp = data_stamp(base)

    def _refresh_if_changed(self, ctx: Any) -> None:
        if data_stamp(self._base(ctx)) != ctx.panel.state.get("stamp"):
            self._refresh(ctx)

    # events -----------------------------------------------------------------------------------------------
    def on_load(self, ctx: Any) -> None:
        ctx.panel.state.base_view = stages_key(ctx.view)
        ctx.panel.state.shown_view = None
        ctx.panel.state.cell = None
        ctx.panel.state.error = None
        self._refresh(ctx)

    def on_change_dataset(self, ctx: Any) -> None:
        self.on_load(ctx)

    def on_change_view(self, ctx: Any) -> None:
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
