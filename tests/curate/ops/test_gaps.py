"""Coverage gaps: pure binning on synthetic poses, and on real faces with a frontal-only B."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from curate.ops.gaps import compute_gaps


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

    from curate.extract.local import extract
    from curate.ops.gaps import dataset_gaps

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

    from curate.extract.local import extract
    from curate.ops.gaps import UNKNOWN, dataset_gaps

    # frames 24-33 of the clip are the singer in full profile: the mesh fails, so those faces have no expression
    extract([samples / "short_hamilton_clip.mp4"], dataset_name, "A", every=3, workers=1, progress=False)
    extract([samples / "obama.jpg"], dataset_name, "B", workers=1, progress=False)
    ds = fo.load_dataset(dataset_name)
    unknown = len(ds.match((fo.ViewField("landmarks_ok") == False) & (fo.ViewField("is_face") != False)))  # noqa: E712
    assert unknown > 0
    report, _, views = dataset_gaps(dataset_name, by_expression=True, min_count=1, out_dir=tmp_path)
    # detections in tracks the mesh never fitted are not faces: left out, and said
    assert report.left_out == {"not faces": len(ds.match(fo.ViewField("is_face") == False))}  # noqa: E712
    assert UNKNOWN in report.expressions and int(report.counts_a[report.expressions.index(UNKNOWN)].sum()) == unknown
    gap_views = [ds.load_saved_view(v) for v in views if v.endswith(f" {UNKNOWN}")]
    assert gap_views and all(len(v) > 0 and v.first().expression is None for v in gap_views)


def test_flipping_fills_the_mirrored_profile_but_not_a_pose_no_side_has():
    rng = np.random.default_rng(2)
    # A: frontal + right profiles (yaw 45..55) + pitched-up frontal; B: frontal + LEFT profiles only
    yaw_a = np.r_[rng.uniform(-5, 5, 60), rng.uniform(45, 55, 30), rng.uniform(-5, 5, 20)]
    pitch_a = np.r_[np.zeros(90), np.full(20, 30.0)]
    yaw_b = np.r_[rng.uniform(-5, 5, 60), rng.uniform(-55, -45, 30)]
    subset = np.array(["A"] * len(yaw_a) + ["B"] * len(yaw_b))
    report = compute_gaps(subset, np.r_[yaw_a, yaw_b], np.r_[pitch_a, np.zeros(len(yaw_b))])
    gaps = {(g["lacking"], g["yaw"], g["pitch"]): g for g in report.gaps}
    assert gaps[("B", "40..60", "-10..10")]["flip_fills"] and gaps[("B", "40..60", "-10..10")]["kind"] == "missing"
    assert not gaps[("B", "-10..10", ">25")]["flip_fills"]  # nobody's flip makes a pitched-up face
    assert report.coverage["B_covers_A"] == pytest.approx(60 / 110)
    assert report.coverage["B_covers_A_flipped"] == pytest.approx(90 / 110)
    status = report.status("B")  # (pitch, yaw) marks for the panel
    ylab = ["<-60", "-60..-40", "-40..-25", "-25..-10", "-10..10", "10..25", "25..40", "40..60", ">60"]
    assert status[2, ylab.index("40..60")] == "flip"
    assert status[4, ylab.index("-10..10")] == "missing"
    assert status[2, ylab.index("-10..10")] == ""
    assert report.status("A")[2, ylab.index("-60..-40")] == "flip"  # A's right profiles flip into B's left ones
    # with the mirrored faces, half of B's profiles are still too few for A's share: thin stays thin
    thin = compute_gaps(np.array(["A"] * 100 + ["B"] * 100), np.r_[np.full(50, 50.0), np.zeros(50), np.full(2, -50.0),
                        np.zeros(98)], np.zeros(200))
    g = next(g for g in thin.gaps if g["lacking"] == "B" and g["yaw"] == "40..60")
    assert g["kind"] == "missing" and not g["flip_fills"]
