"""The App workbench: the coverage panel and every operator through FiftyOne's own operator executor."""
from __future__ import annotations

import numpy as np
import pytest

from curate.app.coverage import parse_edges

PLUGIN = "@faceset/curate"


@pytest.fixture
def work_dataset(faces_dataset, dataset_name):
    """A private copy of the shared faces dataset that a test may change."""
    import fiftyone as fo

    from curate.app.launch import register_plugin

    register_plugin()
    clone = fo.load_dataset(faces_dataset).clone(dataset_name, persistent=True)
    yield clone.name
    for name in (dataset_name, f"{dataset_name}-trash"):
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


def run(operator: str, dataset: str, params: dict | None = None, selected: list[str] | None = None,
        view=None, **kw):
    """Execute one of the plugin's operators; returns its result and the App operations it triggered."""
    import fiftyone.operators as foo

    ctx = {"dataset": dataset, "params": params or {}}
    if selected is not None:
        ctx["selected"] = selected
    if view is not None:
        ctx["view"] = view
    result = foo.execute_operator(f"{PLUGIN}/{operator}", ctx=ctx, **kw)
    return result, result.executor.to_json()["requests"] if result.executor else []


def requests_of(requests: list[dict], uri: str) -> list[dict]:
    """The params of every triggered operation with this uri."""
    return [r["params"] for r in requests if r["operator_uri"] == uri]


def selected_ids(requests: list[dict]) -> list[str]:
    """The sample ids the last set_selected_samples operation selects."""
    return [s["id"] if isinstance(s, dict) else s for s in requests_of(requests, "set_selected_samples")[-1]["samples"]]


class Panel:
    """Drives the coverage panel as the App does: a method call with the panel's state, state patches applied."""

    def __init__(self, dataset: str):
        self.dataset, self.state, self.view = dataset, {}, None

    def call(self, method: str, selected: list[str] | None = None, **event) -> list[dict]:
        params = {"__method__": method, "panel_id": "panel-1", "panel_state": dict(self.state), **event}
        _, requests = run("coverage_panel", self.dataset, params, view=self.view, selected=selected)
        for patch in requests_of(requests, "patch_panel_state"):
            self.state.update(patch["state"])
        self.output = requests_of(requests, "show_panel_output")[-1]["output"]
        return requests


def test_parse_edges():
    assert parse_edges("-30, 0,30", (1.0,)) == (-30.0, 0.0, 30.0)
    assert parse_edges("", (1.0, 2.0)) == (1.0, 2.0)
    for bad in ("10,5", "a,b", "1,1"):
        with pytest.raises(ValueError):
            parse_edges(bad, (1.0,))


def test_coverage_figure_marks_flip_and_gap_cells():
    from curate.app.coverage import coverage_figure, coverage_scores
    from curate.ops.gaps import compute_gaps

    subset = np.array(["A"] * 40 + ["B"] * 30)
    yaw = np.r_[np.zeros(20), np.full(20, 50.0), np.zeros(20), np.full(10, -50.0)]
    report = compute_gaps(subset, yaw, np.zeros(70))
    fig = coverage_figure(report)
    assert [t["name"] for t in fig["data"]] == ["A", "B"]
    b = fig["data"][1]
    assert b["customdata"][2][b["x"].index("40..60")] == 0 and "⇋" in b["text"][2][b["x"].index("40..60")]
    dashed = [s for s in fig["layout"]["shapes"] if s["line"]["dash"] == "dot"]
    assert len(dashed) == 2  # B's right profiles (flip of its left ones) and A's left profiles
    scores = coverage_scores(report)
    assert scores["B_covers_A"] == pytest.approx(0.5) and scores["B_covers_A_flipped"] == pytest.approx(1.0)


def test_panel_click_shows_the_cells_faces_and_follows_the_view(work_dataset):
    import fiftyone as fo
    from fiftyone import ViewField as F

    from curate.app.coverage import grid, view_coverage
    from curate.ops.gaps import bin_labels

    def cell_count(report, subsets, yaw_label, pitch_label):  # what the grid shows after a click
        y, p = bin_labels(report.yaw_edges).index(yaw_label), bin_labels(report.pitch_edges).index(pitch_label)
        return int(sum(grid(report, s)[p, y] for s in subsets))

    ds = fo.load_dataset(work_dataset)
    panel = Panel(work_dataset)
    panel.call("on_load")
    fig = panel.state["figure"]
    assert panel.state["scores"]["A"] == len(ds.match(F("subset") == "A"))
    assert "coverage" in panel.output["type"]["properties"]  # the plot is rendered
    a = fig["data"][0]
    counts = np.array(a["customdata"])
    p, y = np.unravel_index(np.argmax(counts), counts.shape)
    requests = panel.call("on_click_cell", trace="A", x=a["x"][y], y=a["y"][p])
    shown = requests_of(requests, "set_view")[-1]["view"]
    view = fo.DatasetView._build(ds, shown)
    report = view_coverage(ds)
    assert len(view) == counts[p, y] == cell_count(report, ["A"], a["x"][y], a["y"][p]) > 0
    assert set(view.distinct("subset")) == {"A"}
    assert panel.state["cell"]["count"] == len(view)

    panel.view = view  # the App answers with on_change_view: the panel keeps counting the whole dataset
    panel.call("on_change_view")
    assert panel.state["figure"]["data"][0]["customdata"] == a["customdata"]
    panel.call("on_show", value="A and B")
    requests = panel.call("on_click_cell", trace="B", x=a["x"][y], y=a["y"][p])
    both = fo.DatasetView._build(ds, requests_of(requests, "set_view")[-1]["view"])
    assert len(both) == cell_count(report, ["A", "B"], a["x"][y], a["y"][p])

    panel.view = ds.match(F("subset") == "B")  # a view the user picked: the panel follows it
    panel.call("on_change_view")
    assert panel.state["scores"]["A"] == 0 and panel.state["scores"]["B"] == len(panel.view)

    panel.view = None
    panel.call("on_change_view")
    panel.call("on_yaw_edges", value="-30,0,30")
    assert panel.state["figure"]["data"][0]["x"] == ["<-30", "-30..0", "0..30", ">30"]
    panel.call("on_pitch_edges", value="5,1")
    assert "pitch edges" in panel.state["error"]
    expr = next(e for e in panel.state["expressions"] if e != "unknown")
    panel.call("on_expression", value=expr)
    assert panel.state["scores"]["A"] == len(ds.match((F("subset") == "A") & (F("expression.label") == expr)))

    # faces trashed elsewhere: the next event refreshes the counts
    before = panel.state["scores"]["A"]
    ds.delete_samples(ds.match((F("subset") == "A") & (F("expression.label") == expr)).limit(1))
    panel.call("on_change_selected")
    assert panel.state["scores"]["A"] == before - 1


def test_panel_buttons_review_identity_then_trash_the_selection_and_undo(work_dataset):
    import fiftyone as fo
    from fiftyone import ViewField as F

    ds = fo.load_dataset(work_dataset)
    n_b = len(ds.match(F("subset") == "B"))
    panel = Panel(work_dataset)
    panel.call("on_load")
    requests = panel.call("on_review_b")
    flagged = selected_ids(requests)
    review = fo.DatasetView._build(ds, requests_of(requests, "set_view")[-1]["view"])
    assert flagged and set(flagged) <= set(review.values("id")) and len(review) == n_b
    panel.view = review  # the App shows the review: the panel still counts the whole dataset
    panel.call("on_change_view")
    assert panel.state["scores"]["B"] == n_b
    requests = panel.call("on_trash", selected=flagged)  # the one button
    assert len(ds.match(F("subset") == "B")) == n_b - len(flagged)
    assert panel.state["scores"]["B"] == n_b - len(flagged)
    assert requests_of(requests, "clear_selected_samples") and "notify" in {r["operator_uri"] for r in requests}
    panel.call("on_undo")
    assert len(ds.match(F("subset") == "B")) == n_b and panel.state["scores"]["B"] == n_b
    requests = panel.call("on_undo")  # nothing left: one error notice, no exception
    assert [r["params"]["variant"] for r in requests if r["operator_uri"] == "notify"] == ["error"]
    requests = panel.call("on_duplicates_a")
    shown = fo.DatasetView._build(ds, requests_of(requests, "set_view")[-1]["view"])  # dedupe's review view of A
    assert set(shown.values("subset")) == {"A"} and set(shown.values("id")) <= set(ds.load_saved_view("near_duplicates").values("id"))


def _has_timer(output: dict) -> bool:
    return '"TimerView"' in __import__("json").dumps(output)


def test_review_selection_waits_for_the_view_then_is_resent_until_the_grid_shows_it(work_dataset):
    """The App clears the selection when a view loads: the panel's timer re-selects until it is seen twice."""
    import fiftyone as fo

    ds = fo.load_dataset(work_dataset)
    panel = Panel(work_dataset)
    panel.call("on_load")
    assert not _has_timer(panel.output)
    requests = panel.call("on_review_b")
    flagged = selected_ids(requests)
    review = fo.DatasetView._build(ds, requests_of(requests, "set_view")[-1]["view"])
    assert flagged and panel.state["selection_sync"] and _has_timer(panel.output)
    # the App still shows the old view: nothing is sent (the view's load would clear it)
    assert not requests_of(panel.call("on_selection_tick", selected=[]), "set_selected_samples")
    panel.view = review  # the view has loaded and cleared the selection: the tick selects again
    panel.call("on_change_view", selected=[])
    assert panel.state["scores"]["B"] == len(ds.match(fo.ViewField("subset") == "B"))  # still the whole dataset
    assert set(selected_ids(panel.call("on_selection_tick", selected=[]))) == set(flagged)
    panel.call("on_selection_tick", selected=flagged)  # seen once: still checking
    assert panel.state["selection_sync"] and _has_timer(panel.output)
    # cleared again by a late state update: sent again, and seen twice in a row from then on
    assert set(selected_ids(panel.call("on_selection_tick", selected=[]))) == set(flagged)
    panel.call("on_selection_tick", selected=flagged)
    assert panel.state["selection_sync"]
    panel.call("on_selection_tick", selected=flagged)
    assert not panel.state["selection_sync"] and not _has_timer(panel.output)
    # done: the user's own later choice is not overruled
    assert not requests_of(panel.call("on_change_selected", selected=flagged[:1]), "set_selected_samples")


def test_app_opens_grid_and_panel_side_by_side():
    from curate.app.launch import PANEL, workspace

    space = workspace()
    assert [c.type for c in space.children] == ["Samples", PANEL] and space.orientation == "horizontal"


def test_trash_selected_then_undo_restores_ids_and_fields(work_dataset):
    import fiftyone as fo

    ds = fo.load_dataset(work_dataset)
    picked = ds.take(4, seed=1).values("id")
    before = {s.id: s.to_dict() for s in ds.select(picked)}
    n = len(ds)
    result, requests = run("trash_faces", work_dataset, {"reason": "wrong person"}, selected=picked)
    assert result.error is None, result.error_message
    assert result.result["count"] == 4 and sorted(result.result["ids"]) == sorted(picked)
    assert len(ds) == n - 4 and not len(ds.select(picked))
    assert len(fo.load_dataset(f"{work_dataset}-trash")) == 4
    assert requests_of(requests, "clear_selected_samples") and requests_of(requests, "reload_dataset")

    result, _ = run("undo_trash", work_dataset)
    assert result.result["count"] == 4 and len(ds) == n
    after = {s.id: s.to_dict() for s in ds.select(picked)}
    assert after.keys() == before.keys()
    for sid in picked:
        for key, value in before[sid].items():
            if key != "last_modified_at":
                assert after[sid][key] == value, key
    with pytest.raises(Exception, match="nothing to undo"):
        run("undo_trash", work_dataset)


def test_trash_without_selection_takes_the_current_view(work_dataset):
    import fiftyone as fo
    from fiftyone import ViewField as F

    ds = fo.load_dataset(work_dataset)
    view = ds.match(F("subset") == "B")
    n_b = len(view)
    result, _ = run("trash_faces", work_dataset, view=view)
    assert result.result["count"] == n_b and not len(ds.match(F("subset") == "B"))


def test_set_subset_and_keep_are_respected_by_identity_and_dedupe(work_dataset):
    import fiftyone as fo
    from fiftyone import ViewField as F

    ds = fo.load_dataset(work_dataset)
    result, requests = run("identity_review", work_dataset, {"subset": "B"})
    flagged = result.result["flagged_ids"]
    assert flagged and selected_ids(requests) == flagged
    shown = fo.DatasetView._build(ds, requests_of(requests, "set_view")[-1]["view"])
    distances = shown.values("identity_distance")
    assert distances == sorted(distances, reverse=True)  # worst first

    result, _ = run("keep_faces", work_dataset, selected=flagged[:1])
    assert result.result["count"] == 1 and "keep" in ds[flagged[0]].tags
    result, _ = run("identity_review", work_dataset, {"subset": "B"})
    assert flagged[0] not in result.result["flagged_ids"] and len(result.result["flagged_ids"]) == len(flagged) - 1
    assert flagged[0] not in ds.load_saved_view("wrong_identity").values("id")

    a_ids = ds.match(F("subset") == "A").limit(3).values("id")
    result, _ = run("set_subset", work_dataset, {"subset": "B"}, selected=a_ids)
    assert result.result["count"] == 3 and set(ds.select(a_ids).values("subset")) == {"B"}


def test_dedupe_dry_run_shows_groups_kept_face_first_with_the_rest_selected(work_dataset):
    import fiftyone as fo
    from fiftyone import ViewField as F

    ds = fo.load_dataset(work_dataset)
    result, requests = run("dedupe_faces", work_dataset, {"subset": "A", "threshold": 24})
    removable = result.result["removable_ids"]
    assert removable and selected_ids(requests) == removable
    view = ds.load_saved_view("near_duplicates").match(F("subset") == "A")
    group, keep = view.values(["dup_group", "dup_keep"])
    assert set(removable) == {i for i, k in zip(view.values("id"), keep) if not k}
    for g in set(group):  # each group's kept face comes first
        members = [k for gg, k in zip(group, keep) if gg == g]
        assert members[0] and not any(members[1:]) and len(members) > 1

    keeper = removable[0]  # a face marked keep is never removed
    run("keep_faces", work_dataset, selected=[keeper])
    result, _ = run("dedupe_faces", work_dataset, {"subset": "A", "threshold": 24, "dry_run": False})
    assert result.result["removed"] == len(removable) - 1 and ds[keeper].id == keeper


def test_long_jobs_run_delegated_with_progress(work_dataset, tmp_path):
    import fiftyone as fo
    from fiftyone.operators.delegated import DelegatedOperationService

    fo.config.allow_legacy_orchestrators = True
    out = tmp_path / "exp"
    result, _ = run("export_faces", work_dataset, {"subset": "A", "out": str(out), "n": 6}, request_delegation=True)
    assert result.delegated and not out.exists()  # queued, not run
    service = DelegatedOperationService()
    done = service.execute_queued_operations(dataset_name=work_dataset)
    assert len(done) == 1
    ops = service.list_operations(dataset_name=work_dataset)
    assert [o.run_state for o in ops] == ["completed"], [(o.run_state, o.run_result) for o in ops]
    assert len(list(out.glob("short_hamilton_clip_*.jpg"))) == 6
    assert ops[0].status is not None and ops[0].status.progress is not None  # set by the export loop

    for op_name, params in (("gap_report", {}), ("umap_faces", {"neighbors": 5}), ("identity_review", {"subset": "A"}),
                            ("dedupe_faces", {"subset": "A"})):
        result, _ = run(op_name, work_dataset, params, request_delegation=True)
        assert result.delegated, op_name
    service.execute_queued_operations(dataset_name=work_dataset)
    states = {o.operator.rsplit("/", 1)[-1]: o.run_state for o in service.list_operations(dataset_name=work_dataset)}
    assert set(states.values()) == {"completed"}, states
    assert fo.load_dataset(work_dataset).has_brain_run("faceset_umap")


def test_every_operator_is_registered():
    import fiftyone.operators as foo

    from curate.app.launch import register_plugin
    from curate.app.plugin import OPERATORS

    register_plugin()
    uris = {op.uri for op in foo.list_operators()}
    for cls in OPERATORS:
        assert f"{PLUGIN}/{cls().config.name}" in uris


def test_app_lists_face_datasets(faces_dataset):
    from typer.testing import CliRunner

    from faceset.cli.curate import app

    result = CliRunner().invoke(app, ["app"])
    assert result.exit_code == 0, result.output
    line = next(l for l in result.output.splitlines() if l.startswith(faces_dataset + "\t"))
    assert "A=" in line and "B=" in line
    assert "-trash" not in result.output
