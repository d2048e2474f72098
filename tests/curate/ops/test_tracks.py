"""Shots and face tracks: cuts found, tracks never cross a cut, faces of one frame never share a track."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from curate.ops.tracks.link import cannot_link_pairs, link_tracks
from curate.ops.tracks.shots import find_cuts, frame_changes, frame_signature, shot_of
from curate.ops.tracks.update import faces_of_landmarked_tracks


def _scene(seed: int, shape=(180, 320)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (9, 16, 3), dtype=np.uint8)
    return cv2.resize(small, shape[::-1], interpolation=cv2.INTER_CUBIC)


def test_cut_found_where_the_scene_changes_not_where_the_light_does():
    a, b = _scene(0), _scene(1)
    frames = [np.roll(a, k, axis=1) for k in range(12)]  # a slow pan ...
    frames += [np.clip(frames[-1].astype(int) + 60, 0, 255).astype(np.uint8)] * 3  # ... a stage light (same layout) ...
    frames += [np.roll(b, k, axis=1) for k in range(12)]  # ... and a cut at frame 15
    changes = frame_changes(np.stack([frame_signature(f) for f in frames]))
    assert changes[12, 0] > 0.25 and changes[12, 1] < 0.3  # the light changes the colours, not the layout
    assert find_cuts(changes) == [15]
    assert shot_of(np.array([0, 14, 15, 26]), [15]).tolist() == [0, 0, 1, 1]


def _boxes(path: list[tuple[float, float]], size: float = 60.0) -> np.ndarray:
    return np.array([[x, y, size, size] for x, y in path])


def test_tracks_follow_faces_but_never_cross_a_cut_or_share_a_frame():
    frames = np.repeat(np.arange(0, 40, 2), 2)  # two faces a frame, every 2nd frame analysed (--every 2)
    left = [(100 + 3 * f, 100) for f in range(0, 40, 2)]
    right = [(400 - 3 * f, 110) for f in range(0, 40, 2)]  # they cross half-way
    boxes = np.concatenate([_boxes([p, q]) for p, q in zip(left, right)])
    shots = shot_of(frames, [20])
    labels = link_tracks(frames, boxes, shots)
    for frame in np.unique(frames):
        assert len(set(labels[frames == frame])) == 2  # faces of one frame: two tracks
    for label in np.unique(labels):
        assert len(set(shots[labels == label])) == 1  # a track stays in its shot
    assert len(np.unique(labels)) == 4  # each face one track per shot: not broken by the skipped frames
    assert (0, 1) in cannot_link_pairs(frames, labels)


def test_appearance_gate_keeps_two_people_apart_at_one_place():
    frames = np.arange(6)
    boxes = _boxes([(100, 100)] * 6)
    emb = np.r_[np.tile(np.eye(8)[0], (3, 1)), np.tile(np.eye(8)[1], (3, 1))]  # someone else steps in at frame 3
    assert link_tracks(frames, boxes, embeddings=emb, max_embed=0.6).tolist() == [0, 0, 0, 1, 1, 1]
    assert link_tracks(frames, boxes).tolist() == [0] * 6


def test_a_track_the_landmark_model_never_placed_is_not_a_face():
    tracks = ["a", "a", "b", "b", "c"]
    assert faces_of_landmarked_tracks(tracks, [True, False, False, False, True]).tolist() == [True, True, False, False, True]


@pytest.fixture(scope="module")
def two_shot_video(tmp_path_factory, samples):
    """A 40-frame video: Obama's face in the first shot, Biden's at the same place in the second."""
    from curate.core.media import load_image

    faces = []
    for name, (x, y, side) in (("obama.jpg", (351, 132, 282)), ("biden.jpg", (431, 234, 315))):  # detector boxes
        rgb = load_image(samples / name)
        pad = side // 3
        faces.append(cv2.resize(rgb[y - pad:y + side + pad, x - pad:x + side + pad], (200, 200)))
    path = tmp_path_factory.mktemp("video") / "two_shots.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (480, 270))
    for k in range(40):
        scene = _scene(k // 20 + 5, (270, 480))
        scene[35 + k % 3:235 + k % 3, 140 + k:340 + k] = faces[k // 20]
        writer.write(cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_extract_stores_shots_and_tracks(two_shot_video, dataset_name):
    import fiftyone as fo

    from curate.extract.local import extract

    summary = extract([two_shot_video], dataset_name, "A", every=2, workers=1, progress=False)
    assert any(line.startswith("tracks: ") for line in summary.lines())
    ds = fo.load_dataset(dataset_name)
    frame, shot, track = ds.values("frame"), ds.values("shot"), ds.values("track")
    assert len(frame) >= 15
    assert all(s == (f >= 20) for f, s in zip(frame, shot))  # the cut at frame 20 found
    per_track = {t: {s for s, tt in zip(shot, track) if tt == t} for t in set(track)}
    assert all(len(s) == 1 for s in per_track.values())  # no track crosses the cut
    assert len(per_track) == 2
    assert "tracks" in ds.list_saved_views()
