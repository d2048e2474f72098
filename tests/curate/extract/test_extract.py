"""Extraction into FiftyOne on real media: fields, resume, kill -9, bad input, info, app."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import fiftyone as fo
import numpy as np
from badinput import FAILING_KINDS, GOOD_KINDS, make_bad_inputs

from curate.dataset.info import dataset_info, format_info
from curate.extract.local import extract

FACESET = [sys.executable, "-m", "faceset"]
CLIP = "short_hamilton_clip.mp4"


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*FACESET, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_extract_photos_and_video(samples, dataset_name):
    photos = [samples / n for n in ("obama.jpg", "two_people.jpg", "biden.jpg")]
    b = extract(photos, dataset_name, "B", workers=1, progress=False)
    a = extract([samples / CLIP], dataset_name, "A", every=25, workers=2, progress=False)
    assert (b.faces, b.files_read) == (4, 3)
    assert a.frames == 11 and a.faces >= 7
    ds = fo.load_dataset(dataset_name)
    assert ds.count_values("subset") == {"B": 4, "A": a.faces}
    assert len(set(ds.values("face_key"))) == len(ds)
    sample = ds.match(fo.ViewField("source").ends_with("two_people.jpg")).sort_by("face_index").first()
    assert Path(sample.filepath).is_file() and sample.filepath.startswith(os.environ["FIFTYONE_DEFAULT_DATASET_DIR"])
    assert sample.frame == 0 and sample.source_type == "image" and sample.tags == ["B"]
    assert len(sample.landmarks.keypoints[0].points) == 68
    assert np.asarray(sample.source_landmarks).shape == (68, 2) and len(sample.bbox) == 4
    assert sample.embedding.shape == (128,) and sample.backend == "mediapipe"
    assert sample.expression.label in ("neutral", "smile", "mouth_open", "eyes_closed", "brows_raised", "unsure")
    for field in ("yaw", "pitch", "roll", "blur", "brightness", "face_size", "det_score", "smile", "mouth_open"):
        assert isinstance(sample[field], float), field
    video_frames = ds.match(fo.ViewField("subset") == "A").distinct("frame")
    assert all(f % 25 == 0 for f in video_frames)

    info = dataset_info(dataset_name)
    assert info["subsets"] == {"A": a.faces, "B": 4} and info["sources"] == 4
    assert info["ranges"]["yaw"]["min"] <= info["ranges"]["yaw"]["max"]
    assert {k: sum(c.values()) for k, c in info["expressions"].items()} == info["subsets"]  # counted per subset
    assert "A expressions: " in format_info(info) and "B expressions: " in format_info(info)
    assert "subsets: A=" in format_info(info)

    # the same faces are never stored twice, even when asked for under the other subset
    again = extract(photos + [samples / CLIP], dataset_name, "B", every=25, workers=1, progress=False)
    assert (again.faces, again.files_resumed) == (0, 4) and len(fo.load_dataset(dataset_name)) == len(ds)
    rerun = extract([samples / CLIP], dataset_name, "A", every=25, progress=False)
    assert rerun.faces == 0 and rerun.files_resumed == 1


def test_frames_sent_in_groups_give_the_same_faces_and_resume(samples, dataset_name):
    """A GPU's local extract sends frames to the workers in groups (one batch per model stage): the same faces
    and markers as frame by frame (here forced on the CPU, groups of 4 with an odd tail)."""
    clip = samples / "short_hamilton_clip.mp4"
    extract([clip], dataset_name, "A", every=9, workers=2, progress=False)
    grouped = dataset_name + "-g"
    summary = extract([clip], grouped, "A", every=9, workers=2, progress=False, frame_group_size=4)
    a, b = _load_fresh(dataset_name), _load_fresh(grouped)
    assert summary.frames == 31 and len(b) == len(a) > 20
    boxes = lambda ds: dict(zip(ds.values("face_key"), ds.values("bbox")))  # noqa: E731
    ba, bb = boxes(a), boxes(b)
    assert ba.keys() == bb.keys()
    assert max(np.abs(np.subtract(ba[k], bb[k])).max() for k in ba) < 0.01
    again = extract([clip], grouped, "A", every=9, workers=1, progress=False, frame_group_size=4)
    assert again.faces == 0 and again.files_resumed == 1


def _load_fresh(name: str) -> fo.Dataset:
    ds = fo.load_dataset(name)
    ds.reload()  # another process may have changed its schema since this process cached it
    return ds


def _count(name: str) -> int:
    return len(_load_fresh(name)) if fo.dataset_exists(name) else 0


def test_kill_minus_9_then_rerun_resumes_exactly(samples, dataset_name):
    reference = f"{dataset_name}-ref"
    extract([samples / CLIP], reference, "A", every=4, progress=False)
    expected = sorted(fo.load_dataset(reference).values("face_key"))
    assert len(expected) > 20

    cmd = [*FACESET, "extract", str(samples / CLIP), "--dataset", dataset_name, "--every", "4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while _count(dataset_name) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker processes
    proc.wait()
    partial = _count(dataset_name)
    assert 0 < partial < len(expected)

    result = run_cli("extract", samples / CLIP, "--dataset", dataset_name, "--every", "4")
    assert result.returncode == 0, result.stderr
    keys = _load_fresh(dataset_name).values("face_key")
    assert sorted(keys) == expected  # nothing lost, nothing twice
    assert run_cli("extract", samples / CLIP, "--dataset", dataset_name, "--every", "4").returncode == 0
    assert _count(dataset_name) == len(expected)


def test_bad_inputs_each_get_one_line_and_the_run_goes_on(samples, dataset_name, tmp_path):
    bad = make_bad_inputs(samples, tmp_path / "in")
    extract([samples / "biden.jpg"], dataset_name, "A", workers=1, progress=False)
    result = run_cli("extract", tmp_path / "in", "--dataset", dataset_name, "--subset", "A", "--workers", "1")
    assert result.returncode == 0, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("faceset: skipped")]
    for kind in FAILING_KINDS + ("no_face",):
        mine = [ln for ln in lines if str(bad[kind]) in ln]
        assert len(mine) == 1, (kind, lines)
    assert any("empty file" in ln for ln in lines) and any("no face found" in ln for ln in lines)
    ds = fo.load_dataset(dataset_name)
    sources = {Path(s).name for s in ds.distinct("source")}
    assert {bad[k].name for k in GOOD_KINDS} | {"biden.jpg"} == sources  # odd formats worked, nothing lost
    assert "files: 11 (" in result.stdout and "skipped" in result.stdout
    exif = ds.match(fo.ViewField("source").ends_with("exif_rotated.jpg")).first()
    assert abs(exif.roll) < 15  # upright after EXIF rotation

    only_bad = run_cli("extract", bad["zero_byte"], bad["truncated"], "--dataset", dataset_name)
    assert only_bad.returncode == 1
    assert len(fo.load_dataset(dataset_name)) == len(ds)


def test_every_command_has_help():
    for args in ([], ["extract"], ["info"], ["app"], ["demo"]):
        result = run_cli(*args, "--help", timeout=60)
        assert result.returncode == 0 and "Usage" in result.stdout, args


def test_info_cli_and_missing_dataset(samples, dataset_name):
    extract([samples / "two_people.jpg"], dataset_name, "B", workers=1, progress=False)
    result = run_cli("info", dataset_name)
    assert result.returncode == 0 and "subsets: B=2" in result.stdout and "yaw" in result.stdout
    missing = run_cli("info", f"{dataset_name}-nope")
    assert missing.returncode == 2 and "no dataset named" in missing.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_app_serves_the_dataset_on_localhost(samples, dataset_name):
    extract([samples / "obama_small.jpg"], dataset_name, "A", workers=1, progress=False)
    port = _free_port()
    proc = subprocess.Popen([*FACESET, "app", dataset_name, "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline, page = time.time() + 120, ""
        while time.time() < deadline and not page:
            try:
                page = urllib.request.urlopen(f"http://localhost:{port}/", timeout=5).read().decode()
            except OSError:
                time.sleep(1)
        assert "<html" in page.lower() or "<!doctype" in page.lower()
        request = urllib.request.Request(f"http://localhost:{port}/operators", method="POST",
                                         data=json.dumps({"dataset_name": dataset_name}).encode(),
                                         headers={"Content-Type": "application/json"})
        listed = json.loads(urllib.request.urlopen(request, timeout=30).read())
        uris = {op["uri"] for op in listed["operators"]}
        assert {f"@faceset/curate/{n}" for n in ("gap_report", "identity_review", "dedupe_faces", "export_faces")} <= uris, listed["errors"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
