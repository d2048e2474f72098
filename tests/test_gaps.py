"""Coverage gaps: pure binning on synthetic poses, and on real faces with a frontal-only B."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from curate.gaps import compute_gaps


def test_compute_gaps_finds_missing_and_thin_bins():
    rng = np.random.default_rng(1)
    yaw_a = np.r_[rng.uniform(-5, 5, 100), rng.uniform(45, 55, 40), rng.uniform(-35, -30, 30)]
    yaw_b = np.r_[rng.uniform(-5, 5, 200), rng.uniform(-35, -30, 2)]
    subset = np.array(["A"] * len(yaw_a) + ["B"] * len(yaw_b))
    report = compute_gaps(subset, np.r_[yaw_a, yaw_b], np.zeros(len(subset)))
    lacking_b = {(g["yaw"], g["kind"]) for g in report.gaps if g["lacking"] == "B"}
    assert lacking_b == {("40..60", "missing"), ("-40..-25", "thin")}
    assert not [g for g in report.gaps if g["lacking"] == "A"]
    assert report.coverage["B_covers_A"] == pytest.approx(130 / 170)
    assert report.coverage["A_covers_B"] == 1.0
    assert report.counts_a.sum() == 170 and report.counts_b.sum() == 202


def test_gaps_by_expression_split_bins():
    subset = np.array(["A", "A", "A", "B", "B", "B"])
    expr = np.array(["smile"] * 3 + ["neutral"] * 3)
    report = compute_gaps(subset, np.zeros(6), np.zeros(6), expr)
    assert report.expressions == ["neutral", "smile"]
    assert [(g["lacking"], g["expression"]) for g in report.gaps] == [("B", "smile"), ("A", "neutral")]


def test_frontal_only_b_shows_side_poses_of_a_as_gaps(samples, dataset_name, tmp_path):
    import fiftyone as fo

    from curate.extract import extract
    from curate.gaps import dataset_gaps

    extract([samples / "short_hamilton_clip.mp4"], dataset_name, "A", every=6, progress=False)
    extract([samples / n for n in ("obama.jpg", "obama_small.jpg", "two_people.jpg")], dataset_name, "B", workers=1, progress=False)
    report, paths, views = dataset_gaps(dataset_name, min_count=2, out_dir=tmp_path)
    side = [g for g in report.gaps if g["lacking"] == "B" and g["yaw_range"][1] is not None and g["yaw_range"][1] <= -10]
    assert side, report.gaps
    assert report.coverage["B_covers_A"] < 0.9
    png = Image.open(paths["png"])
    assert png.size[0] > 2.5 * png.size[1]  # A, B and difference side by side
    assert paths["json"].is_file()
    ds = fo.load_dataset(dataset_name)
    view = ds.load_saved_view(next(v for v in views if v.startswith("gap: B lacks (all")))
    assert len(view) > 0 and set(view.distinct("subset")) == {"A"}
    assert max(abs(y) for y in view.values("yaw")) > 25


def test_faces_without_expression_get_their_own_unknown_bin(samples, dataset_name, tmp_path):
    import fiftyone as fo

    from curate.gaps import UNKNOWN, dataset_gaps

    from curate.extract import extract

    # frames 24-33 of the clip are the singer in full profile: the mesh fails, so those faces have no expression
    extract([samples / "short_hamilton_clip.mp4"], dataset_name, "A", every=3, workers=1, progress=False)
    extract([samples / "obama.jpg"], dataset_name, "B", workers=1, progress=False)
    ds = fo.load_dataset(dataset_name)
    unknown = len(ds.match(fo.ViewField("landmarks_ok") == False))  # noqa: E712
    assert unknown > 0
    report, _, views = dataset_gaps(dataset_name, by_expression=True, min_count=1, out_dir=tmp_path)
    assert UNKNOWN in report.expressions and int(report.counts_a[report.expressions.index(UNKNOWN)].sum()) == unknown
    gap_views = [ds.load_saved_view(v) for v in views if v.endswith(f" {UNKNOWN}")]
    assert gap_views and all(len(v) > 0 and v.first().expression is None for v in gap_views)
