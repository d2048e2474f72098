"""Test isolation: a private embedded database and media dir, unique dataset names, cleanup."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

# before anything imports fiftyone: never touch the user's database or ~/fiftyone
_TMP = Path(tempfile.mkdtemp(prefix="faceset-tests-"))
os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(_TMP / "db"))
os.environ["FIFTYONE_DEFAULT_DATASET_DIR"] = str(_TMP / "media")
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
os.environ["FIFTYONE_PLUGINS_DIR"] = str(_TMP / "plugins")

SAMPLES = Path(__file__).resolve().parent.parent / "datasets" / "samples"
RUN_ID = uuid.uuid4().hex[:8]


DB_FIXTURES = {"dataset_name", "faces_dataset", "photos_dataset", "export_dirs", "tiny_model", "masked_photos"}
# the slowest tests of a full run (pytest --durations; each over ~20 s on 2 cores): `-m "not slow"` skips them
SLOW = {
    "test_cluster_extract_with_a_killed_worker_equals_a_single_process_run",
    "test_mask_train_and_apply_take_crops_of_mixed_sizes",
    "test_counts_say_what_they_count",
    "test_kill_minus_9_then_rerun_resumes_exactly",
    "test_wrong_inputs_get_one_line_and_faces_move_between_subsets",
    "test_ctrl_c_during_extract_says_what_it_kept_leaves_no_process_and_resumes",
    "test_two_extracts_of_the_same_video_at_once_give_one_run_of_faces",
    "test_umap_brain_run_and_plot",
    "test_export_never_mixes_with_what_a_folder_already_holds",
}


def pytest_collection_modifyitems(config, items):
    """Markers (pyproject.toml): db for a test that uses a database fixture, browser for the App in Chromium,
    slow for the slowest; gpu tests mark themselves."""
    for item in items:
        if DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)
        if item.module.__name__ == "test_app_browser":
            item.add_marker(pytest.mark.browser)
        if getattr(item, "originalname", item.name) in SLOW:
            item.add_marker(pytest.mark.slow)


def pytest_sessionfinish(session, exitstatus):
    """Delete the datasets this run made (also on a user's own server) and the temp dir."""
    import sys

    if "fiftyone" not in sys.modules:
        shutil.rmtree(_TMP / "media", ignore_errors=True)
        return
    try:
        import fiftyone as fo

        for name in fo.list_datasets():
            if name.startswith(f"fstest-{RUN_ID}"):
                fo.delete_dataset(name)
    except Exception:  # pragma: no cover - nothing to clean
        pass
    shutil.rmtree(_TMP / "media", ignore_errors=True)
    shutil.rmtree(_TMP / "plugins", ignore_errors=True)


@pytest.fixture
def dataset_name(request) -> str:
    """A dataset name unique to this test run and test."""
    return f"fstest-{RUN_ID}-{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def samples() -> Path:
    """The shipped sample media folder."""
    return SAMPLES


@pytest.fixture(scope="session")
def analyzer():
    """The default backend (mediapipe), loaded once."""
    from curate.analysis.registry import create_analyzer

    return create_analyzer("dlib")


@pytest.fixture(scope="session")
def load_rgb():
    """Load a sample as RGB."""
    from curate.core.media import load_image

    return lambda name: load_image(SAMPLES / name)


@pytest.fixture(scope="session")
def faces_dataset() -> str:
    """A read-mostly dataset shared by tests: the clip (A, every 10th frame) and the photos (B)."""
    from curate.extract.local import extract

    name = f"fstest-{RUN_ID}-shared-faces"
    extract([SAMPLES / "short_hamilton_clip.mp4"], name, "A", every=10, progress=False)
    photos = ["obama.jpg", "obama_small.jpg", "biden.jpg", "two_people.jpg", "alex-lacamoire.png", "lin-manuel-miranda.png"]
    extract([SAMPLES / n for n in photos], name, "B", workers=1, progress=False)
    return name


@pytest.fixture
def photos_dataset(samples, dataset_name) -> str:
    """A fresh dataset of three sample photos in subset B (four faces)."""
    from curate.extract.local import extract

    extract([samples / n for n in ("obama.jpg", "biden.jpg", "two_people.jpg")], dataset_name, "B", workers=1, progress=False)
    return dataset_name


@pytest.fixture(scope="session")
def export_dirs(faces_dataset, tmp_path_factory) -> tuple[Path, Path]:
    """Export folders of A and B of the shared dataset, at 64 px (what training reads)."""
    from curate.export.balanced import export_faces

    root = tmp_path_factory.mktemp("exports")
    export_faces(faces_dataset, "A", root / "A", size=64, progress=False)
    export_faces(faces_dataset, "B", root / "B", size=64, progress=False)
    return root / "A", root / "B"


@pytest.fixture(scope="session")
def tiny_model(export_dirs, tmp_path_factory) -> Path:
    """A 10-step swap model of the shared A and B (enough to convert with; its faces are blurry)."""
    from train.trainer import TrainSettings, train

    a, b = export_dirs
    d = tmp_path_factory.mktemp("convert-model")
    train(TrainSettings(str(a), str(b), str(d), enc_ch=8, ae_dims=32, dec_ch=8, batch=4, workers=0, iters=10,
                        save_every=10, preview_every=10), progress=False)
    return d
