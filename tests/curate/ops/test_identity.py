"""Identity cleanup on real faces: intruders flagged, bulk delete, exact undo, clusters."""
from __future__ import annotations

import numpy as np
import pytest

from curate.ops.identity import constrained_average_linkage, score_identity


def clip_frame(samples, index: int, path):
    """Frame ``index`` of the sample clip saved as a still image at ``path``."""
    import cv2

    cap = cv2.VideoCapture(str(samples / "short_hamilton_clip.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = cap.read()
    cap.release()
    assert ok
    cv2.imwrite(str(path), bgr)
    return path


def test_clusters_are_ordered_by_size():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.02, (20, 16)) + np.eye(16)[0]
    b = rng.normal(0, 0.02, (5, 16)) + np.eye(16)[1]
    labels = constrained_average_linkage(np.r_[b, a], 0.5)
    assert (labels[5:] == 0).all() and (labels[:5] == 1).all()
    scores = score_identity(np.r_[b, a], threshold=0.5)
    assert scores.ok.tolist() == [False] * 5 + [True] * 20


def test_linkage_equals_sklearn_and_keeps_cannot_links_apart():
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(12, 16))
    x = centres[rng.integers(0, 12, 300)] + rng.normal(0, 0.4, (300, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ours = constrained_average_linkage(x, 0.6)
    ref = AgglomerativeClustering(n_clusters=None, distance_threshold=0.6, linkage="average").fit_predict(x)
    assert adjusted_rand_score(ours, ref) == 1.0
    twins = np.r_[np.eye(16)[:1], np.eye(16)[:1] + 0.01, np.eye(16)[:1] - 0.01]  # three near-identical faces ...
    labels = constrained_average_linkage(twins, 0.5, cannot_link=[(0, 1)])  # ... but 0 and 1 share a frame
    assert labels[0] != labels[1] and labels[2] in (labels[0], labels[1])


def test_identity_is_decided_per_track():
    """A turned face takes its track's identity; a track of turned faces only is unsure; faces of one frame
    are never one person."""
    rng = np.random.default_rng(2)
    me, other = np.eye(16)[0], np.eye(16)[1]
    profile = np.eye(16)[2]  # turned faces of different people look alike to the embedding
    emb = np.r_[me + rng.normal(0, .02, (6, 16)), profile + rng.normal(0, .02, (4, 16)),  # track 0: 6 frontal, 4 turned
                other + rng.normal(0, .02, (3, 16)),  # track 1: another person, frontal
                profile + rng.normal(0, .02, (5, 16))]  # track 2: another person, turned only
    tracks = np.r_[[0] * 10, [1] * 3, [2] * 5]
    reliable = np.r_[[True] * 6, [False] * 4, [True] * 3, [False] * 5]
    scores = score_identity(emb, tracks=tracks, reliable=reliable, threshold=0.4, cluster_threshold=0.4)
    assert scores.ok[:10].all()  # the turned faces of the identity's track are kept
    assert scores.wrong[10:13].all() and not scores.ok[10:].any()
    assert scores.unsure[13:].all()  # never accepted, never flagged
    # two tracks sharing a frame stay two people even when their embeddings agree
    same = np.r_[me + rng.normal(0, .01, (4, 16)), me + rng.normal(0, .01, (2, 16))]
    groups = np.array(["f0", "f1", "f2", "f3", "f0", "f1"])
    split = score_identity(same, tracks=np.r_[[0] * 4, [1] * 2], frame_groups=groups, cluster_threshold=0.4)
    assert split.cluster[0] != split.cluster[4] and split.ok[:4].all() and not split.ok[4:].any()



def test_reference_keeps_one_track_per_frame():
    """Two look-alike tracks in the same frames, both within the reference threshold: only the nearer one is
    the reference person there; a look-alike in other frames is still kept."""
    rng = np.random.default_rng(3)
    me = np.eye(16)[0]
    twin = me + 0.25 * np.eye(16)[1]
    emb = np.r_[me + rng.normal(0, .01, (4, 16)), twin + rng.normal(0, .01, (5, 16)), twin + rng.normal(0, .01, (2, 16))]
    tracks = np.r_[[0] * 4, [1] * 5, [2] * 2]
    groups = np.array(["f0", "f1", "f2", "f3", "f0", "f1", "f2", "f3", "f4", "f9", "f10"])
    scores = score_identity(emb, reference=me[None], threshold=0.35, tracks=tracks, frame_groups=groups)
    assert scores.distance[4] <= 0.35  # the twin is within the threshold ...
    assert scores.ok[:4].all() and scores.wrong[4:9].all()  # ... but shares most frames with a nearer track
    assert scores.ok[9:].all()  # alone in its frames: kept
    alone = score_identity(emb, reference=me[None], threshold=0.35, tracks=tracks)
    assert alone.ok.all()  # without the frames nothing tells them apart
    # a second detection of the same face in one frame (its own one-face track, nearer): the long track loses
    # that frame only
    dup = np.r_[emb[:4], me[None]]
    split = score_identity(dup, reference=me[None], threshold=0.35, tracks=np.r_[[0] * 4, [1]],
                           frame_groups=np.array(["f0", "f1", "f2", "f3", "f2"]))
    assert split.ok.tolist() == [True, True, False, True, True]


def test_intruders_flagged_deleted_and_restored(samples, dataset_name):
    import fiftyone as fo
    from fiftyone import ViewField as F

    from curate.dataset.trash import delete_reversibly, undo
    from curate.extract.local import extract
    from curate.ops.identity import WRONG_IDENTITY_VIEW, dataset_identity

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

    from curate.extract.local import extract
    from curate.ops.identity import dataset_identity

    extract([samples / n for n in ("obama_small.jpg", "biden.jpg", "two_people.jpg")], dataset_name, "B", workers=1, progress=False)
    dataset_identity(dataset_name, "B", references=[str(samples / "obama.jpg")])
    ds = fo.load_dataset(dataset_name)
    ok = {(s.source.rsplit("/", 1)[-1], s.face_index): s.identity_ok for s in ds}
    assert ok[("obama_small.jpg", 0)] and not ok[("biden.jpg", 0)]
    assert sum(ok.values()) == 2  # obama in two_people.jpg too


def test_kept_faces_of_the_clip_are_lin_manuel_alone(samples, dataset_name):
    """The demo's A: the dominant person (and the reference photo's) is Lin-Manuel Miranda, in his shots only
    (frames 0-19 and 82-210); the Obamas' laughing profiles (211-274) and the pianist's (20-81) are not kept."""
    import fiftyone as fo

    from curate.extract.local import extract
    from curate.ops.identity import dataset_identity, usable_faces

    extract([samples / "short_hamilton_clip.mp4"], dataset_name, "A", every=5, progress=False)
    ds = fo.load_dataset(dataset_name)
    for refs in (None, [str(samples / "lin-manuel-miranda.png")]):
        scores, views = dataset_identity(dataset_name, "A", references=refs)
        kept, _ = usable_faces(ds)
        frames = kept.values("frame")
        assert len(frames) >= 25 and scores.unsure.any()
        assert all(f <= 19 or 82 <= f <= 210 for f in frames), sorted(frames)
        his = ds.match(((fo.ViewField("frame") <= 19) | ((fo.ViewField("frame") >= 82) & (fo.ViewField("frame") <= 210))))
        assert len(frames) == len(his.match(fo.ViewField("is_face") != False))  # noqa: E712 - all his faces kept
        assert "identity_unsure" in views
        assert set(ds.load_saved_view("identity_unsure").values("identity_ok")) == {None}


def test_reference_face_the_embedding_cannot_judge_is_refused(samples, tmp_path, capsys):
    """A profile reference (frame 30 of the clip: a man in close profile, mesh not placed) is refused with one
    line naming the file, not silently used; with nothing usable left the command stops."""
    from curate.ops.identity.dataset import reference_vectors

    profile = clip_frame(samples, 30, tmp_path / "profile.png")
    with pytest.raises(ValueError, match="no usable face"):
        reference_vectors("mediapipe", [str(profile)])
    err = capsys.readouterr().err
    assert "profile.png" in err and "not used" in err
    vecs = reference_vectors("mediapipe", [str(profile), str(samples / "lin-manuel-miranda.png")])
    assert len(vecs) == 1


def test_the_identity_command_counts_each_face_once(samples, dataset_name):
    """`faceset identity` prints the identity, other people, unsure faces and non-face detections apart, and
    they add up to the subset's faces (non-faces are not counted among the unsure)."""
    import re

    from typer.testing import CliRunner

    from curate.extract.local import extract
    from faceset.cli import app

    extract([samples / "short_hamilton_clip.mp4"], dataset_name, "A", every=6, progress=False)
    result = CliRunner().invoke(app, ["identity", dataset_name, "-s", "A"])
    assert result.exit_code == 0, result.output
    m = re.search(r"(\d+) faces: (\d+) the identity, (\d+) another person, (\d+) unsure .*?, (\d+) detections that are "
                  r"not faces", result.output)
    assert m, result.output
    total, *parts = map(int, m.groups())
    assert sum(parts) == total and parts[3] > 0


def test_second_look_accepts_near_rejects_far_and_keeps_the_middle_unsure():
    """An unsure track is kept only when its fused mean is within ACCEPT of the identity's centre, another person
    beyond REJECT, unsure between; decided tracks are the unsure ones only, and each is judged as a whole."""
    from curate.ops.identity.second_look import ACCEPT, REJECT, SecondLook, decide_unsure, faces_to_look_at, fuse

    rng = np.random.default_rng(3)
    basis = np.eye(1024)
    dlib = np.tile(np.eye(128)[0], (8, 1)) + rng.normal(0, 1e-3, (8, 128))
    faceres = np.stack([basis[0]] * 2 + [basis[0] * np.cos(a) + basis[1] * np.sin(a) for a in (0, 0, 1.45, 1.45, 2.5, 2.5)])
    unit = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    unsure = np.array([False, False, True, True, True, True, True, True])
    look = faces_to_look_at(unit, unsure)
    assert look.tolist() == [2, 3, 4, 5, 6, 7]
    centre = fuse(dlib[:1], faceres[:1])[0]
    dist, verdict = decide_unsure(unit, unsure, dlib, SecondLook(centre, look, faceres[look]))
    assert verdict.tolist() == [-1, -1, 1, 1, -1, -1, 0, 0]
    assert dist[2] <= ACCEPT < dist[4] <= REJECT < dist[6] and np.isnan(dist[0])
    assert len(faces_to_look_at(np.zeros(40, dtype=int), np.ones(40, dtype=bool))) == 5


def test_turned_still_faces_get_a_second_look(samples, dataset_name, tmp_path):
    """A still of the clip's frame 262 (Barack Obama, Michelle Obama and another woman, all turned 60-85 degrees,
    no track to lean on): the second look ranks his profile nearest his own frontal photo, and never takes anyone
    there for Lin-Manuel Miranda or Joe Biden."""
    import fiftyone as fo

    from curate.dataset.store import load_dataset
    from curate.extract.local import extract
    from curate.ops.identity.dataset import dataset_identity
    from curate.ops.identity.second_look import DISTANCE_FIELD, SECOND_FIELD

    still = clip_frame(samples, 262, tmp_path / "frame262.png")
    extract([still], dataset_name, "A", media_dir=tmp_path / "media", progress=False)
    ds = load_dataset(dataset_name)
    real = ds.match(fo.ViewField("is_face") != False)  # noqa: E712
    assert len(real) >= 2 and min(np.abs(real.values("yaw"))) > 40
    barack = min(zip(real.values("bbox"), real.values("id")), key=lambda b: abs(b[0][0] - 315))[1]
    scores, _ = dataset_identity(dataset_name, "A", references=[str(samples / "obama.jpg")])
    ds.reload()
    dist = dict(zip(ds.values("id"), ds.values(DISTANCE_FIELD)))
    others = [d for i, d in dist.items() if i != barack and d is not None]
    assert dist[barack] is not None and others and dist[barack] < min(others)
    assert not scores.wrong[[i == barack for i in ds.values("id")]].any()  # his own profile is never flagged
    assert len(ds.exists(SECOND_FIELD)) >= len(real)  # stored: a re-run reads no frame again
    for ref in ("lin-manuel-miranda.png", "biden.jpg"):
        scores, _ = dataset_identity(dataset_name, "A", references=[str(samples / ref)])
        assert not scores.ok.any()
