"""Near-duplicates: hash pairs match brute force, no chaining, real duplicated faces grouped and the sharpest kept."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from curate.ops.dedupe import (
    candidate_pairs,
    find_near_duplicates,
    group_around_keepers,
    hamming,
)


def test_candidate_pairs_equal_brute_force():
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**63, 300, dtype=np.uint64)
    flips = np.uint64(1) << rng.integers(0, 64, (300, 4)).astype(np.uint64)
    near = base.copy()
    for k in range(rng.integers(0, 5)):
        near ^= flips[:, k]
    hashes = np.r_[base, near[:150]]
    i, j = candidate_pairs(hashes, 4)
    d = hamming(hashes[:, None], hashes[None])
    bi, bj = np.nonzero(np.triu(d <= 4, 1))
    assert sorted(zip(i.tolist(), j.tolist())) == sorted(zip(bi.tolist(), bj.tolist()))
    assert len(i) >= 150


def test_groups_do_not_chain_and_keep_the_sharpest():
    # 0~1 and 1~2 are close, 0 and 2 are not: the sharpest (1) keeps both; otherwise 0 keeps 1 and 2 stays
    labels = group_around_keepers(4, np.array([0, 1]), np.array([1, 2]), np.array([1.0, 5.0, 2.0, 3.0]))
    assert labels[0] == labels[1] == labels[2] != labels[3]
    labels = group_around_keepers(4, np.array([0, 1]), np.array([1, 2]), np.array([9.0, 5.0, 2.0, 3.0]))
    assert labels[0] == labels[1] != labels[2]


def test_same_identity_other_pose_is_not_a_duplicate():
    emb = np.array([[1.0, 0.0], [1.0, 0.05], [1.0, 0.02]])
    hashes = np.array([0, 0b1, 0xFFFF_FFFF], dtype=np.uint64)  # third: same person, other crop (pose)
    groups = find_near_duplicates(hashes, emb, np.array([1.0, 2.0, 3.0]))
    assert groups.labels[0] == groups.labels[1] != groups.labels[2]
    assert groups.keep.tolist() == [False, True, True]


@pytest.fixture
def duplicated_faces(samples, tmp_path, load_rgb):
    """Obama four times (original, blurred, JPEG q50, downscaled), Biden, and the performer in two frames."""
    from curate.core.media import iter_video

    folder = tmp_path / "faces"
    folder.mkdir()
    bgr = cv2.imread(str(samples / "obama.jpg"))
    shutil.copy(samples / "obama.jpg", folder / "obama.jpg")
    cv2.imwrite(str(folder / "obama_blurred.jpg"), cv2.GaussianBlur(bgr, (0, 0), 2.0))
    cv2.imwrite(str(folder / "obama_q50.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 50])
    shutil.copy(samples / "obama_small.jpg", folder / "obama_small.jpg")
    shutil.copy(samples / "biden.jpg", folder / "biden.jpg")
    for index, rgb in iter_video(samples / "short_hamilton_clip.mp4"):
        if index in (0, 120):
            cv2.imwrite(str(folder / f"clip_{index:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if index >= 120:
            break
    return folder


@pytest.mark.parametrize("method", ["crop", "brain"])
def test_duplicated_faces_grouped_sharpest_kept_and_undone(duplicated_faces, dataset_name, method):
    import fiftyone as fo

    from curate.dataset.trash import undo
    from curate.extract.local import extract
    from curate.ops.dedupe import DUPLICATES_VIEW, REMOVE_VIEW, dataset_dedupe

    extract([duplicated_faces], dataset_name, "B", workers=1, progress=False)
    ds = fo.load_dataset(dataset_name)
    assert len(ds) == 7
    name = {s.id: s.source.rsplit("/", 1)[-1] for s in ds}
    results, batch = dataset_dedupe(dataset_name, "B", method=method, dry_run=True, progress=False)
    assert results["B"].groups == 1 and results["B"].removable == 3 and batch is None and len(ds) == 7
    dups = sorted(name[i] for i in ds.load_saved_view(REMOVE_VIEW).values("id"))
    print(f"{method}: would remove {dups}")
    assert dups == ["obama_blurred.jpg", "obama_q50.jpg", "obama_small.jpg"]
    review = [name[i] for i in ds.load_saved_view(DUPLICATES_VIEW).values("id")]  # the group whole, kept face first
    assert review[0] == "obama.jpg" and sorted(review[1:]) == dups
    results, batch = dataset_dedupe(dataset_name, "B", method=method, progress=False)
    assert batch["count"] == 3
    kept = sorted(name[i] for i in ds.values("id"))
    assert kept == ["biden.jpg", "clip_000.png", "clip_120.png", "obama.jpg"]
    undo(dataset_name)
    assert len(ds) == 7
