"""The learned smile (issue 26): the shipped emotion network and smile model, and the labels they give."""
from __future__ import annotations

import hashlib
import re
import sys

import numpy as np
import pytest
import torch
from paths import ROOT  # noqa: E402

from curate.analysis.backends.human.emotion import CLASSES, LOGITS, emotion_net, logits_of_crops
from curate.analysis.expression import expression_from_crop, image_expression
from curate.core.expression import (
    SMILE_FEATURES,
    SMILE_MODEL,
    SMILE_MODEL_GEOMETRY,
    ExpressionThresholds,
    SmileModel,
    label_expression,
)

sys.path.insert(0, str(ROOT / "bench"))
from tfjs_reference import model_input  # noqa: E402

DATA = ROOT / "curate" / "data" / "human"
SMILING = ("obama.jpg", "obama_small.jpg", "obama_partial_face.jpg", "alex-lacamoire.png")  # by eye: broad smiles
NEUTRAL = ("biden.jpg",)  # by eye: mouth closed, no smile (so is the right face of two_people.jpg)


@pytest.fixture(scope="module")
def mp():
    from curate.analysis.registry import create_analyzer

    torch.set_num_threads(1)
    return create_analyzer("mediapipe")


@pytest.fixture(scope="module")
def photo_faces(mp, load_rgb):
    """(image, face) of every sample photo's largest face."""
    from curate.analysis.protocols import largest_face

    out = {}
    for name in SMILING + NEUTRAL + ("two_people.jpg",):
        rgb = load_rgb(name)
        faces = mp.analyze(rgb)
        out[name] = (rgb, largest_face(faces) if name != "two_people.jpg" else max(faces, key=lambda f: f.bbox[0]))
    return out


def test_shipped_files_match_the_notice_and_load_without_pickles():
    notice = (DATA / "NOTICE.md").read_text()
    for name in ("emotion.json", "emotion.bin", "smile_lr.npz", "smile_lr_geometry.npz"):
        digest = hashlib.sha256((DATA / name).read_bytes()).hexdigest()
        assert re.search(rf"{re.escape(name)}\s+{digest}", notice), f"{name}: sha256 {digest} not in NOTICE.md"
    model = SmileModel.load(SMILE_MODEL)
    assert model.feature_names == SMILE_FEATURES + tuple(f"logits_{c}" for c in CLASSES)
    assert model.emotion_crop == "upright:1.2" and model.weights.shape == (19,)
    geometry = SmileModel.load(SMILE_MODEL_GEOMETRY)
    assert geometry.feature_names == SMILE_FEATURES and not geometry.uses_emotion


def test_emotion_network_matches_tensorflow_js():
    """Logits and probabilities of TFJS 4.22 (bench/tfjs_reference.py) on the seeded grey input."""
    ref = np.load(ROOT / "datasets" / "tfjs_reference.npz")
    x = torch.from_numpy(model_input("emotion")).permute(0, 3, 1, 2)
    with torch.inference_mode():
        logits = emotion_net("cpu")(x)[0].numpy()
    want = ref[f"emotion/{LOGITS}"]
    assert np.abs(logits - want).max() <= 1e-5 * np.abs(want).max()
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert np.abs(prob - ref["emotion/Identity"]).max() <= 1e-6


def test_logits_are_the_mean_of_the_crop_and_its_mirror():
    grey = (model_input("emotion")[..., 0] + 1.0) / 2.0  # back to grey 0..1
    both = logits_of_crops(grey)
    assert np.allclose(both, logits_of_crops(grey[:, :, ::-1]), atol=1e-5)  # mirror-invariant by construction
    x = torch.from_numpy(model_input("emotion")).permute(0, 3, 1, 2)
    with torch.inference_mode():
        plain, mirrored = emotion_net("cpu")(x)[0].numpy(), emotion_net("cpu")(x.flip(3))[0].numpy()
    assert np.allclose(both, (plain + mirrored) / 2, atol=1e-5)


def test_sample_smiles_are_smiles_and_a_neutral_face_is_not(photo_faces):
    from curate.analysis.frame import face_expression

    for name in SMILING:
        rgb, face = photo_faces[name]
        scores = face_expression(face, rgb)
        assert label_expression(scores) == "smile" and scores["smile"] > 0.8, (name, scores)
    for name in NEUTRAL + ("two_people.jpg",):
        rgb, face = photo_faces[name]
        scores = face_expression(face, rgb)
        assert scores["smile"] < 0.3 and label_expression(scores) == "neutral", (name, scores)


def test_a_mirrored_face_gets_the_same_smile(photo_faces, mp):
    from curate.analysis.frame import face_expression
    from curate.core.landmarks import mirror_landmarks
    from curate.core.mesh import mirror_mesh

    for name in ("obama.jpg", "biden.jpg", "two_people.jpg"):
        rgb, face = photo_faces[name]
        flipped = np.ascontiguousarray(rgb[:, ::-1])
        w = rgb.shape[1]
        eyes = np.stack([mirror_mesh_points(face.eyes[1], w), mirror_mesh_points(face.eyes[0], w)])
        same = image_expression(mirror_mesh(face.mesh, w), eyes, flipped, mirror_landmarks(face.landmarks, w))
        # the mesh features are exactly symmetric; the network's 64 px crop of the mirrored photo is not exactly
        # the mirrored crop (warp's pixel grid and pre-shrink), and a pixel's shift moves its logits a little
        assert same["smile"] == pytest.approx(face_expression(face, rgb)["smile"], abs=0.05), name
        # and through the whole backend on the mirrored photo (its own mesh of the mirrored face)
        again = min(mp.analyze(flipped), key=lambda f: np.linalg.norm(f.landmarks.mean(0) - mirror_landmarks(face.landmarks, w).mean(0)))
        assert face_expression(again, flipped)["smile"] == pytest.approx(face_expression(face, rgb)["smile"], abs=0.08), name


def mirror_mesh_points(points: np.ndarray, width: float) -> np.ndarray:
    out = np.asarray(points, dtype=np.float64).copy()
    out[:, 0] = (width - 1) - out[:, 0]
    return out


def test_the_label_rule_applies_the_thresholds(photo_faces):
    from curate.analysis.frame import AnalysisSettings, describe_face

    scores = {"smile": 0.62, "mouth_open": 0.7, "eyes_closed": 0.0, "brows_raised": 0.0}
    assert label_expression(scores) == "smile"  # smile first
    assert label_expression(scores, ExpressionThresholds(smile=0.7)) == "mouth_open"
    assert label_expression(scores, ExpressionThresholds(smile=0.7, mouth_open=0.8)) == "neutral"
    rgb, face = photo_faces["obama.jpg"]
    record, _ = describe_face(rgb, face, AnalysisSettings())
    assert record["expression"] == "smile" and record["expression_scores"]["smile"] > 0.9
    strict = AnalysisSettings(thresholds=ExpressionThresholds(smile=1.01))
    record, _ = describe_face(rgb, face, strict)
    assert record["expression"] != "smile"


class _NoEmbedder:
    def embed(self, rgb, pts):  # noqa: ANN001, ANN201
        return np.zeros(128, np.float32)


def test_imported_face_with_a_mesh_gets_the_extracted_label(photo_faces):
    """One face, one label: describe_known_face given the mesh scores as describe_face does; without it the
    68-point scores (what imports from faceswap/DeepFaceLab files get)."""
    from curate.analysis.frame import AnalysisSettings, describe_face, describe_known_face

    settings = AnalysisSettings()
    for name in ("obama.jpg", "biden.jpg"):
        rgb, face = photo_faces[name]
        extracted, _ = describe_face(rgb, face, settings)
        known, _ = describe_known_face(rgb, face.landmarks, _NoEmbedder(), settings, mesh=face.mesh, eyes=face.eyes)
        assert known["expression_scores"] == pytest.approx(extracted["expression_scores"], abs=1e-9)
        assert known["expression"] == extracted["expression"]
        assert np.allclose(known["mesh"], extracted["mesh"])
        plain, _ = describe_known_face(rgb, face.landmarks, _NoEmbedder(), settings)
        assert "mesh" not in plain and set(plain["expression_scores"]) == set(extracted["expression_scores"])


def test_scores_recomputed_from_the_stored_crop_agree_with_the_frame(photo_faces):
    import cv2

    from curate.analysis.frame import AnalysisSettings, describe_face
    from curate.core.align import transform_points
    from curate.core.media import encode_image

    settings = AnalysisSettings()
    for name in ("obama.jpg", "obama_small.jpg", "biden.jpg"):
        rgb, face = photo_faces[name]
        record, crop = describe_face(rgb, face, settings)
        jpeg = np.frombuffer(encode_image(crop, ".jpg", settings.jpeg_quality), np.uint8)
        stored = np.ascontiguousarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[:, :, ::-1])
        pts = transform_points(np.asarray(record["source_landmarks"]), np.asarray(record["align_matrix"]))
        again = expression_from_crop(stored, pts, record["mesh"], record["mesh_z"])
        assert again["smile"] == pytest.approx(record["expression_scores"]["smile"], abs=0.1), name
        assert label_expression(again) == record["expression"], name
        assert expression_from_crop(stored, pts, record["mesh"], None) is None  # old datasets: no depth stored
        assert set(expression_from_crop(stored, pts)) == set(again)  # no mesh: the 68-point scores


def test_without_the_image_the_geometry_model_scores_the_mesh(photo_faces):
    from curate.analysis.frame import face_expression

    for name in ("obama.jpg", "biden.jpg"):
        rgb, face = photo_faces[name]
        with_image, without = face_expression(face, rgb), face_expression(face)
        assert (with_image["smile"] >= 0.5) == (without["smile"] >= 0.5)
        assert {k: v for k, v in with_image.items() if k != "smile"} == {k: v for k, v in without.items() if k != "smile"}


def test_a_face_turned_past_the_limit_is_unsure_with_its_scores_kept():
    from curate.core.expression import MAX_YAW, label_expression

    scores = {"smile": 0.9, "mouth_open": 0.2, "eyes_closed": 0.0, "brows_raised": 0.0}
    assert label_expression(scores, yaw=MAX_YAW - 1) == "smile"
    assert label_expression(scores, yaw=-(MAX_YAW + 1)) == "unsure" and scores["smile"] == 0.9
    assert label_expression(scores) == "smile"  # no pose known: judged
