"""Extraction that must not lose or corrupt work: odd names, concurrent writers, changed and cut media, kill -9."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import fiftyone as fo
import psutil

from curate.analysis.frame import source_id
from curate.dataset import store
from curate.extract.local import extract

FACESET = [sys.executable, "-m", "faceset"]
CLIP = "short_hamilton_clip.mp4"


def _keys(name: str) -> list[str]:
    ds = fo.load_dataset(name)
    ds.reload()
    return sorted(ds.values("face_key"))


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*FACESET, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_file_name_that_is_not_utf8_is_read_stored_and_reported(samples, dataset_name, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(samples / "obama_small.jpg", folder / "ok.jpg")
    odd = os.fsdecode(bytes(folder) + b"/caf\xe9.jpg")  # Latin-1 bytes: not a UTF-8 name
    shutil.copy(samples / "biden.jpg", odd)
    (Path(os.fsdecode(bytes(folder) + b"/broken\xff.jpg"))).write_bytes(b"not a picture")
    result = subprocess.run([*FACESET, "extract", str(folder), "-d", dataset_name, "-j", "1"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "broken\\xff.jpg" in result.stderr  # reported, readably
    sources = sorted(Path(s).name for s in fo.load_dataset(dataset_name).values("source"))
    assert sources == ["caf\\xe9.jpg", "ok.jpg"]


def test_two_extracts_of_the_same_video_at_once_give_one_run_of_faces(samples, dataset_name):
    reference = f"{dataset_name}-ref"
    extract([samples / CLIP], reference, "A", every=6, workers=1, progress=False)
    procs = [_start("extract", samples / CLIP, "-d", dataset_name, "--every", "6", "-j", "1") for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert _keys(dataset_name) == _keys(reference)  # no crash, no duplicate, nothing lost


def test_extracts_of_different_sources_at_once_keep_every_marker(samples, dataset_name, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("obama.jpg", "biden.jpg", "two_people.jpg", "alex-lacamoire.png"):
        shutil.copy(samples / name, photos / name)
    procs = [_start("extract", samples / CLIP, "-d", dataset_name, "--every", "9", "-j", "1"),
             _start("extract", photos, "-d", dataset_name, "-j", "1")]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    ds = fo.load_dataset(dataset_name)
    for path in [samples / CLIP, *sorted(photos.iterdir())]:
        assert store.get_progress(ds, source_id(path.absolute())).get("done"), path
    again = extract([samples / CLIP], dataset_name, "A", every=9, workers=1, progress=False)
    again_photos = extract([photos], dataset_name, "A", workers=1, progress=False)
    assert (again.files_resumed, again.faces, again_photos.files_resumed, again_photos.faces) == (1, 0, 4, 0)


def _cut_video(samples: Path, out: Path, seconds: float) -> Path:
    """A faststart MP4 of the clip's first seconds (frame count in the header, before the data)."""
    from convert.frames import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-i", str(samples / CLIP), "-t", str(seconds), "-an",
                    "-c:v", "mjpeg", "-q:v", "3", "-movflags", "+faststart", str(out)], check=True)
    return out


def test_a_half_written_video_is_reported_and_read_again_when_complete(samples, dataset_name, tmp_path):
    full = _cut_video(samples, tmp_path / "full.mp4", 2.0)
    reference = f"{dataset_name}-ref"
    extract([full], reference, "A", every=3, workers=1, progress=False)
    video = tmp_path / "video.mp4"
    data = full.read_bytes()
    video.write_bytes(data[: len(data) // 2])  # a download cut in half
    errors = []
    first = extract([video], dataset_name, "A", every=3, workers=1, progress=False,
                    on_error=lambda path, reason: errors.append(reason))
    assert any(r.startswith("only ") and "frames decode" in r for r in errors), errors
    assert 0 < first.faces < len(_keys(reference))
    marker = store.get_progress(fo.load_dataset(dataset_name), source_id(video))
    assert marker and not marker["done"]
    time.sleep(0.01)
    shutil.copy(full, video)  # the download completes: same path, new content
    second = extract([video], dataset_name, "A", every=3, workers=1, progress=False)
    assert second.files_resumed == 0 and second.faces > 0
    ref_frames = sorted(k.split("_", 1)[1] for k in _keys(reference))
    assert sorted(k.split("_", 1)[1] for k in _keys(dataset_name)) == ref_frames


def test_a_first_run_that_finds_nothing_leaves_no_dataset(samples, dataset_name, tmp_path):
    (tmp_path / "notes.jpg").write_text("not a picture")
    result = subprocess.run([*FACESET, "extract", str(tmp_path / "notes.jpg"), "-d", dataset_name],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "notes.jpg" in result.stderr
    assert not fo.dataset_exists(dataset_name)


def test_workers_die_with_a_killed_extract(samples, dataset_name):
    proc = subprocess.Popen([*FACESET, "extract", str(samples / CLIP), "-d", dataset_name, "-j", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    parent = psutil.Process(proc.pid)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if not fo.dataset_exists(dataset_name):
            time.sleep(0.2)
            continue
        ds = fo.load_dataset(dataset_name)
        ds.reload()
        if len(ds):  # the workers are analysing
            break
        time.sleep(0.2)
    kids = parent.children(recursive=True)
    assert len(kids) >= 2, kids
    os.kill(proc.pid, signal.SIGKILL)  # the CLI alone, not its process group
    proc.wait()
    gone, alive = psutil.wait_procs(kids, timeout=15)
    assert not alive, [p.cmdline()[:3] for p in alive]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*FACESET, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_subsets_are_validated_by_every_command_and_function(photos_dataset, samples, tmp_path):
    import pytest

    from curate.dataset.views import filter_view
    from curate.interop.importing import import_dfl

    for args in (["import-dfl", tmp_path, "-d", photos_dataset, "-s", "C"],
                 ["import-faceswap", tmp_path / "a.fsa", "--frames", samples, "-d", photos_dataset, "-s", "Z"],
                 ["filter", photos_dataset, "-s", "C"], ["export", photos_dataset, "-s", "C", "-o", tmp_path / "x"],
                 ["extract", samples / "obama.jpg", "-d", photos_dataset, "-s", "C"]):
        result = _cli(*args)
        assert result.returncode == 2 and "'A', 'B'" in result.stderr.replace("'A' or 'B'", "'A', 'B'"), (args, result.stderr)
    with pytest.raises(ValueError, match="subset must be A or B"):
        import_dfl(photos_dataset, "C", tmp_path)
    with pytest.raises(ValueError, match="subset must be A or B"):
        filter_view(fo.load_dataset(photos_dataset), subset="C")


def test_export_never_mixes_with_what_a_folder_already_holds(photos_dataset, tmp_path):
    out = tmp_path / "exA"
    first = _cli("export", photos_dataset, "-s", "B", "-o", out, "--n", "4")
    assert first.returncode == 0, first.stderr
    again = _cli("export", photos_dataset, "-s", "B", "-o", out, "--n", "2")
    assert again.returncode == 2 and "--overwrite" in again.stderr and len(list(out.glob("*.jpg"))) == 4
    replaced = _cli("export", photos_dataset, "-s", "B", "-o", out, "--n", "2", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert len(list(out.glob("*.jpg"))) == 2  # a trainer sees exactly the manifest's faces
    (out / "my_notes.txt").write_text("mine")
    mixed = _cli("export", photos_dataset, "-s", "B", "-o", out, "--overwrite")
    assert mixed.returncode == 2 and "my_notes.txt" in mixed.stderr and (out / "my_notes.txt").exists()
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"x")
    assert _cli("export", photos_dataset, "-s", "B", "-o", other).returncode == 2


def test_imports_that_refuse_every_file_exit_1(photos_dataset, samples, tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    shutil.copy(samples / "obama.jpg", folder / "plain.jpg")  # no DeepFaceLab metadata
    result = _cli("import-dfl", folder, "-d", photos_dataset, "-s", "B")
    assert result.returncode == 1 and "plain.jpg" in result.stderr


def test_one_cli_convention(photos_dataset):
    import typer.main

    from faceset.cli import app

    group = typer.main.get_command(app)
    shorts: dict[str, set[str]] = {}
    for name, command in group.commands.items():
        params = {p.name: p for p in command.params}
        if "dataset_arg" in params or "dataset" in params:  # every command on a dataset takes --dataset/-d
            opts = [o for p in command.params for o in getattr(p, "opts", [])]
            assert "--dataset" in opts and "-d" in opts, name
        for p in command.params:
            longs = [o for o in p.opts if o.startswith("--")]
            for o in p.opts:
                if len(o) == 2:
                    shorts.setdefault(o, set()).add(longs[0])
    assert all(len(longs) == 1 for longs in shorts.values()), shorts  # no letter means two things
    positional, option = _cli("info", photos_dataset), _cli("info", "-d", photos_dataset)
    assert positional.returncode == option.returncode == 0 and positional.stdout == option.stdout
    for args in (["info", "--no-such-flag"], ["info"], ["gaps", photos_dataset, "--by", "age"], ["info", "no-such-dataset"]):
        result = _cli(*args)
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("faceset: error: "), (args, result.stderr)


def test_commands_print_no_stray_lines(photos_dataset, tmp_path):
    result = _cli("export", "-d", photos_dataset, "-s", "B", "-o", tmp_path / "fs", "--format", "faceswap")
    assert result.returncode == 0, result.stderr
    assert "WARN" not in result.stderr and "imencode" not in result.stderr  # PNGs written without OpenCV noise
    assert [ln for ln in result.stdout.splitlines() if not ln.strip()] == []
    dedupe = _cli("dedupe", "-d", photos_dataset, "--method", "brain", "--dry-run")
    assert dedupe.returncode == 0, dedupe.stderr
    assert "Computing duplicate samples" not in dedupe.stdout + dedupe.stderr


def test_bulk_vector_read_and_field_write_match_fiftyones_own(dataset_name):
    """store.read_ids_and_vectors / read_columns / write_fields (the 100k-face fast paths) give what values() / set_values() give."""
    import fiftyone as fo
    import numpy as np

    from curate.dataset.store import read_columns, read_ids_and_vectors, write_fields

    ds = fo.Dataset(dataset_name)
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(50, 128)).astype(np.float32)
    ds.add_samples([fo.Sample(filepath=f"/x/{k}.jpg", embedding=vecs[k], yaw=float(k) if k % 7 else None)
                    for k in range(50)])
    view = ds.skip(5).sort_by("filepath", reverse=True)
    want = np.stack(view.values("embedding"))
    assert np.array_equal(read_ids_and_vectors(view, "embedding")[1], want)
    columns = read_columns(view, ["yaw", "filepath"], vector="embedding")
    assert columns["id"] == view.values("id") and columns["yaw"] == view.values("yaw")
    assert columns["filepath"] == view.values("filepath") and np.array_equal(columns["embedding"], want)
    ids = view.values("id")
    before = dict(zip(ds.values("id"), ds.values("last_modified_at")))
    write_fields(ds, ids, {"score": [float(k) for k in range(len(ids))], "ok": [k % 2 == 0 for k in range(len(ids))],
                           "group": list(range(len(ids)))})
    assert view.values("score") == [float(k) for k in range(len(ids))] and view.values("group") == list(range(len(ids)))
    assert ds.get_field("ok") is not None and view.values("ok")[:2] == [True, False]
    assert ds.select(ids).values("last_modified_at") != [before[i] for i in ids]  # stamped as changed
    untouched = [i for i in ds.values("id") if i not in set(ids)]
    assert ds.select(untouched).values("score") == [None] * len(untouched)
    write_fields(ds, ids, {"score": [-float(k) for k in range(len(ids))]}, parts=4)  # concurrent merges, one field
    assert view.values("score") == [-float(k) for k in range(len(ids))] and view.values("group") == list(range(len(ids)))
    assert not [c for c in ds._sample_collection.database.list_collection_names() if c.startswith("faceset_scratch_")]


def test_starting_the_database_is_one_process_at_a_time(monkeypatch, tmp_path):
    """FiftyOne's connect runs under a per-user file lock while no server is known: two starts at once never
    overlap (each would start mongod on one data folder; the loser dies after 60 s). A known server skips it."""
    import threading
    from types import SimpleNamespace

    monkeypatch.setattr(store, "START_LOCK", tmp_path / "start.lock")
    monkeypatch.delenv("FIFTYONE_PRIVATE_DATABASE_PORT", raising=False)
    spans = []

    def slow_start(config):  # stands in for FiftyOne's establish_db_conn
        t0 = time.monotonic()
        time.sleep(0.3)
        spans.append((t0, time.monotonic()))

    start = store.serialised(slow_start)
    threads = [threading.Thread(target=start, args=(SimpleNamespace(database_uri=None),)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans.sort()
    assert len(spans) == 3 and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # never overlapping
    spans.clear()
    threads = [threading.Thread(target=start, args=(SimpleNamespace(database_uri="mongodb://own"),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans.sort()
    assert spans[0][1] > spans[1][0]  # the user's own server: no lock, they overlap
    import fiftyone.core.odm.database as fodb

    assert fodb.establish_db_conn.faceset_serialised  # faceset's processes use it


def _own_pid_namespace() -> bool:
    """Whether this machine lets a test start processes in a PID namespace of their own (unshare)."""
    try:
        return subprocess.run(["unshare", "-p", "-f", "--mount-proc", "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_two_commands_started_together_with_no_database_share_one(tmp_path):
    """Two real `faceset` commands started at the same moment with no database service running (a PID namespace
    of their own hides the test run's service; a fresh database folder): both succeed at once, sharing the one
    that won, and print only their own line. Without the start lock the loser dies after ~60 s with a
    traceback, and mongod's "Renamed existing log file" line lands on stdout."""
    import pytest

    if not _own_pid_namespace():
        pytest.skip("needs `unshare -p -f --mount-proc` (a PID namespace) to hide the running database service")
    cmd = " ".join(f"'{c}'" for c in [*FACESET, "app"])
    script = (f"{cmd} > {tmp_path}/o1 2> {tmp_path}/e1 & a=$!; {cmd} > {tmp_path}/o2 2> {tmp_path}/e2 & b=$!; "
              "wait $a; ra=$?; wait $b; rb=$?; echo $ra $rb")
    env = {**os.environ, "FIFTYONE_DATABASE_DIR": str(tmp_path / "db")}
    for known in ("FIFTYONE_DATABASE_URI", "FIFTYONE_PRIVATE_DATABASE_PORT"):  # the run's own service: not seen
        env.pop(known, None)
    t0 = time.time()
    done = subprocess.run(["unshare", "-p", "-f", "--mount-proc", "sh", "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    took = time.time() - t0
    assert done.stdout.split() == ["0", "0"], (done.stdout, (tmp_path / "e1").read_text()[-500:],
                                               (tmp_path / "e2").read_text()[-500:])
    for out in ("o1", "o2"):
        assert (tmp_path / out).read_text().splitlines() == [
            "no face datasets yet: faceset extract SOURCES --dataset NAME"]
    assert took < 45, took  # nobody waited out FiftyOne's 60 s listen timeout


def test_the_database_start_prints_nothing_on_stdout_and_a_failed_start_is_one_line(monkeypatch, tmp_path, capfd):
    """What mongod prints while it starts ("Renamed existing log file ...") never reaches the command's stdout;
    a database service that cannot start ends the command with one `faceset: error:` line."""
    from types import SimpleNamespace

    import fiftyone.core.service as fos
    import pytest

    from faceset import cli

    monkeypatch.setattr(store, "START_LOCK", tmp_path / "start.lock")
    monkeypatch.delenv("FIFTYONE_PRIVATE_DATABASE_PORT", raising=False)

    def noisy_start(config):  # stands in for FiftyOne's connect starting mongod
        subprocess.run(["echo", "Renamed existing log file"], check=True)
        print("faceset's own line")

    store.serialised(noisy_start)(SimpleNamespace(database_uri=None))
    out = capfd.readouterr().out
    assert "Renamed" not in out and "faceset's own line" in out

    def no_db(name):
        raise fos.ServiceListenTimeout("fiftyone.core.service.DatabaseService", 0)

    import curate.dataset.info

    monkeypatch.setattr(curate.dataset.info, "load_dataset", no_db)
    monkeypatch.setattr(sys, "argv", ["faceset", "info", "anything"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    err = [ln for ln in capfd.readouterr().err.splitlines() if ln.strip()]
    assert exit_.value.code == 1 and len(err) == 1 and err[0].startswith("faceset: error: the FiftyOne database"), err


def _wait_for_faces(name: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if fo.dataset_exists(name):
            ds = fo.load_dataset(name)
            ds.reload()
            if len(ds):
                return
        time.sleep(0.2)
    raise AssertionError(f"no faces stored before the deadline (exit {proc.poll()})")


def test_ctrl_c_during_extract_says_what_it_kept_leaves_no_process_and_resumes(samples, dataset_name):
    """Ctrl-C (SIGINT to the command's process group, as a terminal sends it): one line naming the faces kept,
    exit 130, no worker left; the same command then finishes the video without storing a face twice."""
    args = [*FACESET, "extract", str(samples / CLIP), "-d", dataset_name, "-j", "2", "--every", "2"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_faces(dataset_name, proc)
    kids = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    said = [ln for ln in err.replace("\r", "\n").splitlines() if ln.startswith("faceset:")]
    assert len(said) == 1 and "interrupted after" in said[0] and "resume" in said[0], err
    kept = int(said[0].split("interrupted after ")[1].split()[0])
    assert kept == len(_keys(dataset_name)) > 0
    _, alive = psutil.wait_procs(kids, timeout=15)
    assert not alive, [p.cmdline()[:3] for p in alive]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    keys = _keys(dataset_name)
    assert len(keys) == len(set(keys)) > kept and "faces added: " in done.stdout


def test_ctrl_c_stops_the_app_and_its_services(photos_dataset):
    """`faceset app` stopped by Ctrl-C takes its App server and delegated-operation service with it at once."""
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*FACESET, "app", photos_dataset, "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    lines = []
    while not any("FiftyOne App for" in ln for ln in lines) and len(lines) < 20 and proc.poll() is None:
        lines.append(proc.stdout.readline())  # faceset's line comes once the App serves
    assert any("FiftyOne App for" in ln for ln in lines), (lines, proc.poll())
    kids = psutil.Process(proc.pid).children(recursive=True)
    assert kids
    os.kill(proc.pid, signal.SIGINT)  # the command alone (kill -INT): its services are its to stop
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "faceset: App stopped" in err, err
    _, alive = psutil.wait_procs(kids, timeout=10)
    assert not alive, [p.cmdline()[:4] for p in alive]
    with socket.socket() as s:
        assert s.connect_ex(("localhost", port)) != 0  # nothing serves the port any more


def test_counts_say_what_they_count(photos_dataset, samples, tmp_path):
    """Every printed count is of what the command acted on: per subset, no silent caps, short exports said."""
    from convert.pipeline import ConvertSummary

    extract([samples / CLIP], photos_dataset, "A", every=25, workers=1, progress=False)
    ds = fo.load_dataset(photos_dataset)
    in_b = len(ds.match(fo.ViewField("subset") == "B"))
    result = _cli("filter", photos_dataset, "-s", "B")
    assert f"{in_b} of {in_b} faces of subset B match" in result.stdout, result.stdout
    info = _cli("info", photos_dataset).stdout
    assert "A expressions: " in info and "B expressions: " in info
    short = _cli("export", photos_dataset, "-s", "B", "-o", tmp_path / "ex", "--count", "50")
    assert short.returncode == 0 and f"asked for 50 faces: only {in_b} usable faces" in short.stdout, short.stdout
    gaps = _cli("gaps", photos_dataset, "--min-count", "1", "--max-views", "0", "--out", tmp_path / "g")
    assert gaps.returncode == 0 and "of" in gaps.stdout and "saved (the largest; --max-views" in gaps.stdout, gaps.stdout
    first = _cli("identity", photos_dataset, "-s", "A")
    assert first.returncode == 0, first.stderr
    ds.reload()
    wrong_a = len(ds.load_saved_view("wrong_identity"))
    assert wrong_a > 0 and "saved as views" in first.stdout and f"wrong_identity (A: {wrong_a})" in first.stdout
    second = _cli("identity", photos_dataset, "-s", "B")
    assert second.returncode == 0 and f"wrong_identity (A: {wrong_a}" in second.stdout, second.stdout  # A's kept
    assert not any("--only" in ln for ln in ConvertSummary().lines())  # not mentioned when not used
    assert any("--only" in ln for ln in ConvertSummary(only=True).lines())


def test_gaps_of_a_set_with_one_side_empty_say_it_is_not_measured(photos_dataset, tmp_path):
    result = _cli("gaps", photos_dataset, "--out", tmp_path)
    assert result.returncode == 0 and "B covers A: not measured (A has no faces)" in result.stdout, result.stdout


def test_wrong_inputs_get_one_line_and_faces_move_between_subsets(photos_dataset, samples, tmp_path):
    """A video given as DeepFaceLab's frames folder, an alignments file given the wrong video, a folder given to
    extract, a source extracted again into the other subset; `faceset move` puts faces in the right one."""
    import numpy as np

    from curate.interop.faceswap.codec import face_entry, write_alignments

    dfl = _cli("import-dfl", tmp_path, "-d", photos_dataset, "-s", "B", "--frames", samples / CLIP)
    lines = [ln for ln in dfl.stderr.splitlines() if ln.strip()]
    assert dfl.returncode == 2 and len(lines) == 1 and "is not a folder" in lines[0], dfl.stderr
    fsa = write_alignments(tmp_path / "other_alignments.fsa", {
        f"holiday_{i:06d}.mp4": [face_entry([10, 10, 50, 50], np.zeros((68, 2)))] for i in range(1, 25)})
    fs = _cli("import-faceswap", fsa, "--frames", samples / CLIP, "-d", photos_dataset, "-s", "B")
    lines = [ln for ln in fs.stderr.splitlines() if ln.strip()]
    assert fs.returncode == 2 and len(lines) == 1 and "holiday.mp4" in lines[0] and CLIP in lines[0], fs.stderr
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(samples / "obama.jpg", folder / "obama.jpg")
    seen = _cli("extract", folder, "-d", photos_dataset, "-s", "B", "-j", "1")
    assert f"folder {folder}: 1 images and 0 videos inside it" in seen.stdout, seen.stdout
    again = _cli("extract", samples / "biden.jpg", "-d", photos_dataset, "-s", "A", "-j", "1")
    assert "already have their faces in subset B, not A" in again.stdout and "faceset move" in again.stdout, again.stdout
    moved = _cli("move", photos_dataset, "-s", "A", "--source", samples / "biden.jpg")
    assert moved.returncode == 0 and "moved to subset A: 1" in moved.stdout, moved.stderr + moved.stdout
    ds = fo.load_dataset(photos_dataset)
    ds.reload()
    biden = ds.match(fo.ViewField("source") == str((samples / "biden.jpg").absolute()))
    assert biden.values("subset") == ["A"] and biden.values("tags") == [["A"]]
    refused = _cli("move", photos_dataset, "-s", "A", "--source", tmp_path / "nowhere.jpg")
    assert refused.returncode == 2 and "no faces of" in refused.stderr
