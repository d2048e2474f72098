"""Extraction on a Dask cluster: tasks, frame ranges, and a real mongod + scheduler + two workers, one killed."""
from __future__ import annotations

import time

import pytest

from curate.extract.cluster import Item, plan_tasks, split_video


def _frames(item: Item, total: int) -> list[int]:
    stop = total if item.to_end else item.stop
    return [f for f in range(item.start, stop) if f % item.every == 0]


@pytest.mark.parametrize("start,every,total,per", [(0, 1, 100, 7), (7, 3, 100, 5), (0, 4, 9, 256), (90, 2, 100, 3)])
def test_video_ranges_analyse_exactly_the_frames_of_one_pass(start, every, total, per):
    whole = Item("v.mp4", "v.mp4", "sid", True, {}, start, total, every)
    ranges = split_video(whole, total, per)
    frames = [f for r in ranges for f in _frames(r, total)]
    assert frames == [f for f in range(start, total) if f % every == 0]
    assert all(len(_frames(r, total)) <= per for r in ranges)
    assert [r.to_end for r in ranges] == [False] * (len(ranges) - 1) + [True]  # the last reads on to the real end
    assert len({r.marker_id for r in ranges}) == len(ranges)


def test_tasks_group_images_and_keep_each_video_range_alone():
    from curate.analysis.frame import AnalysisSettings

    video = split_video(Item("v.mp4", "v.mp4", "v", True, {}, 0, 50, 1), 50, 10)
    images = [Item(f"{k}.jpg", f"{k}.jpg", f"i{k}", False, {}) for k in range(10)]
    tasks = plan_tasks("ds", "A", "dlib", AnalysisSettings(), video + images, None, images_per_task=4)
    assert [len(t.items) for t in tasks] == [1] * 5 + [4, 4, 2]
    assert sum(t.frames for t in tasks) == 60


def test_a_worker_on_another_database_refuses_the_task(photos_dataset):
    from curate.dataset import store
    from curate.extract.cluster import open_task_dataset

    ds = store.load_dataset(photos_dataset)
    assert open_task_dataset(photos_dataset, store.dataset_key(ds)).name == photos_dataset
    with pytest.raises(LookupError, match="FIFTYONE_DATABASE_URI"):
        open_task_dataset(photos_dataset, f"{photos_dataset}@1999-01-01T00:00:00")  # same name, other dataset
    with pytest.raises(LookupError, match="FIFTYONE_DATABASE_URI"):
        open_task_dataset(f"{photos_dataset}-absent")


def test_seeking_a_far_range_reads_the_same_frames(samples, monkeypatch):
    import numpy as np

    from curate.core import media

    clip = samples / "short_hamilton_clip.mp4"
    whole = dict(media.iter_video(clip, 1, 0))
    monkeypatch.setattr(media, "SEEK_FROM", 1)
    for start in (40, 151, 260):
        part = list(media.iter_video(clip, 3, start, start + 20, seek=True))
        assert [i for i, _ in part] == [i for i in range(start, min(start + 20, len(whole))) if i % 3 == 0]
        assert all(np.array_equal(rgb, whole[i]) for i, rgb in part)


def test_only_evenly_timed_videos_are_split(samples, tmp_path):
    """A clip joined to itself has a timestamp jump: a frame number is no exact seek point there."""
    import subprocess

    import imageio_ffmpeg

    from curate.core.media import evenly_timed

    clip = samples / "short_hamilton_clip.mp4"
    assert evenly_timed(clip)
    listing = tmp_path / "twice.txt"
    listing.write_text(f"file '{clip}'\n" * 2)
    joined = tmp_path / "twice.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-c", "copy", str(joined)], check=True)
    assert not evenly_timed(joined)
    assert not evenly_timed(samples / "obama.jpg")


def test_cluster_extract_with_a_killed_worker_equals_a_single_process_run(samples, tmp_path):
    """mongod on a local port, `dask scheduler` + two `dask worker`s; one worker is SIGKILLed mid-run."""
    from clusterkit import Cluster

    from curate.dataset.store import MARKERS_COLLECTION

    sources = [str(samples / n) for n in ("short_hamilton_clip.mp4", "obama.jpg", "biden.jpg", "two_people.jpg",
                                          "lin-manuel-miranda.png", "alex-lacamoire.png")]
    c = Cluster(tmp_path / "cluster")
    try:
        c.add_worker("w1")
        c.add_worker("w2")
        c.wait_workers(2)
        run = c.faceset("extract", *sources, "-d", "on-cluster", "--every", "2", "--range-frames", "6")
        client, killed = c.client(), None
        markers = c.db()[MARKERS_COLLECTION]
        deadline = time.time() + 240
        while run.poll() is None and time.time() < deadline and killed is None:
            ranges_done = markers.count_documents({"source_id": {"$regex": ":"}, "marker.done": True})
            names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
            busy = {names.get(a) for a, keys in client.processing().items() if keys}
            if ranges_done >= 2 and "w1" in busy:  # w1 has finished parts and is in the middle of another
                c.kill("w1")
                killed = ranges_done
            time.sleep(0.05)
        client.close()
        out, err = run.communicate(timeout=300)
        assert killed, f"w1 was never seen working (exit {run.returncode}): {out}\n{err}"
        assert run.returncode == 0, out + err
        assert "w2:" in out and "files: 6 (6 read" in out, out
        cluster_faces = c.faces("on-cluster")
        total_ranges = markers.count_documents({"source_id": {"$regex": ":"}})
        assert total_ranges == 23 and killed < total_ranges  # 138 analysed frames in ranges of 6; killed mid-run

        single = c.faceset("extract", *sources, "-d", "one-process", "--every", "2", "--workers", "1", cluster=False)
        out1, err1 = single.communicate(timeout=300)
        assert single.returncode == 0, out1 + err1
        single_faces = c.faces("one-process")
        assert len(single_faces) > 50 and set(cluster_faces) == set(single_faces)
        assert all(cluster_faces[k] == single_faces[k] for k in single_faces)  # same faces, shots and tracks
        assert all(v[3] for v in single_faces.values())  # ranges split on workers end in the tracks of one pass

        again = c.faceset("extract", *sources, "-d", "on-cluster", "--every", "2", "--range-frames", "6")
        out2, err2 = again.communicate(timeout=120)
        assert again.returncode == 0 and "6 already done" in out2 and "faces added: 0" in out2, out2 + err2
        assert c.faces("on-cluster") == cluster_faces
    finally:
        c.stop()


def test_frames_analysed_in_a_batch_give_the_same_faces(samples, tmp_path):
    """A worker analyses frames in batches (their embeddings in one network call): same records as one by one."""
    import numpy as np

    from curate.analysis.frame import AnalysisSettings, FrameAnalyzer
    from curate.core.media import iter_video

    clip = samples / "short_hamilton_clip.mp4"
    frames = [(i, rgb) for i, rgb in iter_video(clip, 20, 0, 200)]
    one = FrameAnalyzer(AnalysisSettings(crops_dir=str(tmp_path / "one")))
    many = FrameAnalyzer(AnalysisSettings(crops_dir=str(tmp_path / "many")), one.analyzer)
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    singles = [one(str(clip), i, rgb) for i, rgb in frames]
    batched = many.many(str(clip), frames)
    assert sum(len(r.faces) for r in singles) >= 8
    for a, b in zip(singles, batched):
        assert a.frame == b.frame and [f["face_key"] for f in a.faces] == [f["face_key"] for f in b.faces]
        for fa, fb in zip(a.faces, b.faces):
            assert fa["bbox"] == fb["bbox"] and fa["yaw"] == fb["yaw"]
            assert np.allclose(fa["embedding"], fb["embedding"], atol=1e-5)


def _half(task):
    if task.label == "bad":
        raise ValueError("no such frame")
    return task.label


def test_a_task_failing_on_every_try_is_reported_and_the_rest_go_on():
    from types import SimpleNamespace

    from distributed import Client, LocalCluster

    from curate.extract.cluster import run_tasks

    tasks = [SimpleNamespace(label=x) for x in ("a", "bad", "b")]
    done = []
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    try:
        with Client(cluster) as client:
            failed = run_tasks(client, tasks, lambda t, r: done.append(r), fn=_half)
    finally:
        cluster.close()
    assert sorted(done) == ["a", "b"]
    assert failed == [("bad", "task failed on the cluster (ValueError: no such frame)")]
