"""Identity cleanup on real faces: intruders flagged, bulk delete, exact undo, clusters."""
from __future__ import annotations

import numpy as np
import pytest

from curate.identity import cluster_embeddings, score_identity


def test_clusters_are_ordered_by_size():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.02, (20, 16)) + np.eye(16)[0]
    b = rng.normal(0, 0.02, (5, 16)) + np.eye(16)[1]
    labels = cluster_embeddings(np.r_[b, a], 0.5)
    assert (labels[5:] == 0).all() and (labels[:5] == 1).all()
    scores = score_identity(np.r_[b, a], threshold=0.5)
    assert scores.ok.tolist() == [False] * 5 + [True] * 20


def test_intruders_flagged_deleted_and_restored(samples, dataset_name):
    import fiftyone as fo
    from fiftyone import ViewField as F

    from curate.extract import extract
    from curate.identity import WRONG_IDENTITY_VIEW, dataset_identity
    from curate.trash import delete_reversibly, undo

    video = samples / "short_hamilton_clip.mp4"
    extract([video], dataset_name, "A", every=8, progress=False)
    ds = fo.load_dataset(dataset_name)
    # only the performer: the first 80 frames also show dim faces of other people on the dark stage (the mediapipe
    # detector finds them), the last frames an audience member
    ds.delete_samples(ds.match((F("frame") < 84) | (F("frame") > 215)))
    intruders = ["obama.jpg", "obama_small.jpg", "biden.jpg", "two_people.jpg", "32bit.png"]
    extract([samples / n for n in intruders], dataset_name, "A", workers=1, progress=False)
    scores, views = dataset_identity(dataset_name, "A", review=True)
    truth = np.array([not s.endswith(".mp4") for s in ds.values("source")])
    flagged = np.array([not ok for ok in ds.values("identity_ok")])
    tp = int((truth & flagged).sum())
    precision, recall = tp / max(flagged.sum(), 1), tp / truth.sum()
    print(f"identity cleanup: {truth.sum()} intruders in {len(ds)} faces, precision {precision:.2f}, recall {recall:.2f}")
    assert precision >= 0.9 and recall >= 0.9
    assert {"wrong_identity", "identity_review", "identity: A cluster 0"} <= set(views)

    def snapshot():  # every field but FiftyOne's own created/modified timestamps
        return {s.id: {k: v for k, v in s.to_dict().items() if k not in ("created_at", "last_modified_at")} for s in ds}

    before = snapshot()
    wrong = ds.load_saved_view(WRONG_IDENTITY_VIEW)
    deleted_ids = set(wrong.values("id"))
    batch = delete_reversibly(ds, wrong, "test")
    assert batch["count"] == len(deleted_ids) and len(ds) == len(before) - len(deleted_ids)
    assert not set(ds.values("id")) & deleted_ids
    again = extract([samples / n for n in intruders], dataset_name, "A", min_size=1, workers=1, progress=False)
    assert again.frames == len(intruders) and again.faces == 0
    assert len(ds) == len(before) - len(deleted_ids)  # re-extracting does not bring deleted faces back
    undo(dataset_name)
    assert snapshot() == before  # exactly the deleted samples, same ids and fields
    with pytest.raises(LookupError):
        undo(dataset_name)


def test_identity_with_reference_images(samples, dataset_name):
    import fiftyone as fo

    from curate.extract import extract
    from curate.identity import dataset_identity

    extract([samples / n for n in ("obama_small.jpg", "biden.jpg", "two_people.jpg")], dataset_name, "B", workers=1, progress=False)
    dataset_identity(dataset_name, "B", references=[str(samples / "obama.jpg")])
    ds = fo.load_dataset(dataset_name)
    ok = {(s.source.rsplit("/", 1)[-1], s.face_index): s.identity_ok for s in ds}
    assert ok[("obama_small.jpg", 0)] and not ok[("biden.jpg", 0)]
    assert sum(ok.values()) == 2  # obama in two_people.jpg too
