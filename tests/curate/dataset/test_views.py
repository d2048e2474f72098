"""Filters as saved views (CLI and Python) and the UMAP brain run."""
from __future__ import annotations

import pytest
from PIL import Image
from typer.testing import CliRunner

from faceset.cli import app


def test_parse_condition_errors_name_the_problem():
    from curate.dataset.views import parse_condition

    with pytest.raises(ValueError, match="unknown field 'yawn'"):
        parse_condition("yawn>3", ["yaw"])
    with pytest.raises(ValueError, match="cannot read condition"):
        parse_condition("yaw >> 3", ["yaw"])
    assert parse_condition("abs(yaw)<=10", ["yaw"]) is not None


def test_filter_python_and_cli_save_the_same_view(faces_dataset):
    import fiftyone as fo

    from curate.dataset.views import filter_view, save_filter

    ds = fo.load_dataset(faces_dataset)
    yaw, blur, subset = ds.values("yaw"), ds.values("blur"), ds.values("subset")
    expected = sum(1 for y, b, s in zip(yaw, blur, subset) if abs(y) > 10 and b > 50 and s == "A")
    assert 0 < expected < len(ds)
    view = save_filter(faces_dataset, "py side", where=["abs(yaw)>10", "blur>50"], subset="A")
    assert len(view) == expected
    result = CliRunner().invoke(app, ["filter", faces_dataset, "--where", "abs(yaw)>10", "--where", "blur>50",
                                      "--subset", "A", "--save-view", "cli side"])
    assert result.exit_code == 0, result.output
    assert f"{expected} of {subset.count('A')} faces of subset A match" in result.output  # of what it filtered
    ds.reload()
    assert ds.load_saved_view("cli side").values("id") == ds.load_saved_view("py side").values("id")
    labels = ds.values("expression.label")
    top = max(set(labels), key=labels.count)
    assert len(filter_view(ds, expression=[top])) == labels.count(top)
    bad = CliRunner().invoke(app, ["filter", faces_dataset, "--where", "nope>1"])
    assert bad.exit_code == 2 and "unknown field 'nope'" in bad.output


def test_umap_brain_run_and_plot(faces_dataset, tmp_path):
    import fiftyone as fo

    result = CliRunner().invoke(app, ["umap", faces_dataset, "--out", str(tmp_path / "umap.png")])
    assert result.exit_code == 0, result.output
    ds = fo.load_dataset(faces_dataset)
    assert "faceset_umap" in ds.list_brain_runs()
    points = ds.load_brain_results("faceset_umap").points
    assert points.shape == (len(ds), 2)
    assert Image.open(tmp_path / "umap.png").size[0] > 300


def test_umap_legend_names_the_identity_verdict_not_the_cluster_number():
    """The kept person is 'the identity' whichever cluster number it has (reference mode), others and unsure apart;
    before `faceset identity` the points are only per subset."""
    from curate.ops.umap import point_groups

    labels = [g[1] for g in point_groups(["A", "A", "A", "B"], [True, False, None, True])]
    assert labels == ["A: the identity (1)", "A: other people (1)", "A: unsure (1)", "B: the identity (1)"]
    assert [g[1] for g in point_groups(["A", "B", "B"], None)] == ["A", "B"]
