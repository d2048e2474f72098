"""Backends on real sample media: faces found, embeddings, pose and blur on transformed copies."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from curate.analysis.backends.insightface import find_pack
from curate.analysis.frame import AnalysisSettings, describe_face, face_pose
from curate.analysis.protocols import ModelsMissingError
from curate.analysis.registry import create_analyzer
from curate.core.media import iter_video
from curate.core.pose import estimate_pose


@pytest.fixture(scope="module", params=["mediapipe", "dlib"])
def analyzer(request):
    """Each offline backend in turn (the measures below must hold for both)."""
    return create_analyzer(request.param)


@pytest.mark.parametrize(
    "name,count",
    [("obama.jpg", 1), ("obama_small.jpg", 1), ("biden.jpg", 1), ("two_people.jpg", 2),
     ("lin-manuel-miranda.png", 1), ("alex-lacamoire.png", 1), ("32bit.png", 1)],
)
def test_faces_found_in_sample_photos(analyzer, load_rgb, name, count):
    faces = analyzer.analyze(load_rgb(name))
    assert len(faces) == count
    for face in faces:
        assert face.landmarks.shape == (68, 2)
        assert face.embedding.shape == (128,)
        assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-4)
        x, y, w, h = face.bbox
        inside = (face.landmarks[:, 0] > x - w / 2).all() and (face.landmarks[:, 0] < x + 1.5 * w).all()
        assert inside and h > 20


def test_embedding_separates_identities(analyzer, load_rgb):
    emb = {n: analyzer.analyze(load_rgb(n))[0].embedding for n in ("obama.jpg", "obama_small.jpg", "biden.jpg")}
    same = np.linalg.norm(emb["obama.jpg"] - emb["obama_small.jpg"])
    other = np.linalg.norm(emb["obama.jpg"] - emb["biden.jpg"])
    assert same < 0.5 < other


def test_faces_found_in_sample_video(analyzer, samples):
    found = [len(analyzer.analyze(rgb)) for _, rgb in iter_video(samples / "short_hamilton_clip.mp4", every=25)]
    assert len(found) == 11 and sum(f > 0 for f in found) >= 7


@pytest.mark.parametrize("name", ["obama.jpg", "biden.jpg", "lin-manuel-miranda.png", "alex-lacamoire.png"])
def test_flipped_face_has_opposite_yaw(analyzer, load_rgb, name):
    rgb = load_rgb(name)
    yaw = face_pose(analyzer.analyze(rgb)[0]).yaw
    flipped = face_pose(analyzer.analyze(np.ascontiguousarray(rgb[:, ::-1]))[0]).yaw
    assert flipped == pytest.approx(-yaw, abs=3.0), (yaw, flipped)


@pytest.mark.parametrize("theta", [-20, 15, 30])
def test_rotated_face_changes_roll(analyzer, load_rgb, theta):
    rgb = load_rgb("obama.jpg")
    h, w = rgb.shape[:2]
    roll = face_pose(analyzer.analyze(rgb)[0]).roll
    rot = cv2.warpAffine(rgb, cv2.getRotationMatrix2D((w / 2, h / 2), theta, 1.0), (w, h))
    faces = analyzer.analyze(rot)
    assert len(faces) == 1
    rolled = face_pose(faces[0]).roll
    assert rolled - roll == pytest.approx(-theta, abs=3.0)  # counter-clockwise image rotation -> roll - theta


def test_blur_drops_on_blurred_copy(analyzer, load_rgb):
    rgb = load_rgb("obama.jpg")
    settings = AnalysisSettings()
    sharp, _ = describe_face(rgb, analyzer.analyze(rgb)[0], settings)
    soft_rgb = cv2.GaussianBlur(rgb, (0, 0), 3.0)
    soft, _ = describe_face(soft_rgb, analyzer.analyze(soft_rgb)[0], settings)
    assert soft["blur"] < sharp["blur"] / 3
    assert soft["brightness"] == pytest.approx(sharp["brightness"], abs=5)


def test_record_has_every_measure(analyzer, load_rgb):
    rgb = load_rgb("two_people.jpg")
    record, crop = describe_face(rgb, analyzer.analyze(rgb)[0], AnalysisSettings(size=128))
    assert crop.shape == (128, 128, 3)
    for key in ("bbox", "det_score", "yaw", "pitch", "roll", "blur", "brightness", "face_size", "embedding", "expression"):
        assert key in record
    assert record["face_size"] > 100
    assert np.asarray(record["aligned_landmarks"]).min() > 0 and np.asarray(record["aligned_landmarks"]).max() < 1


def test_cnn_detector_finds_faces(load_rgb):
    cnn = create_analyzer("dlib", detector="cnn", upsample=0)
    assert len(cnn.analyze(load_rgb("two_people.jpg"))) == 2


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend"):
        create_analyzer("mtcnn")


def test_insightface_without_models_says_how_to_get_them(tmp_path):
    with pytest.raises(ModelsMissingError) as info:
        create_analyzer("insightface", models_dir=str(tmp_path))
    message = str(info.value)
    assert str(tmp_path) in message and "buffalo_l" in message and "--models-dir" in message


def _insightface_pack():
    try:
        return find_pack()
    except ModelsMissingError as exc:
        return exc


@pytest.mark.skipif(isinstance(_insightface_pack(), ModelsMissingError), reason=str(_insightface_pack()))
def test_insightface_real_models(load_rgb):
    face_app = create_analyzer("insightface")
    faces = face_app.analyze(load_rgb("two_people.jpg"))
    assert len(faces) == 2 and faces[0].landmarks.shape == (68, 2)
    assert np.linalg.norm(faces[0].embedding) == pytest.approx(1.0, abs=1e-4)
    flipped = face_app.analyze(np.ascontiguousarray(load_rgb("obama.jpg")[:, ::-1]))[0]
    original = face_app.analyze(load_rgb("obama.jpg"))[0]
    assert estimate_pose(flipped.landmarks).yaw == pytest.approx(-estimate_pose(original.landmarks).yaw, abs=3.0)
