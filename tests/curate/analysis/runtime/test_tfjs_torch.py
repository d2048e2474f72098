"""The Human (TFJS) models run by torch: equal to TensorFlow.js's own runtime, and the embedders built on them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from paths import ROOT  # noqa: E402

from curate.analysis.backends.human.embedders import (
    DATA,
    FaceResEmbedder,
    crop_matrix,
    face_square,
    five_points,
)
from curate.analysis.protocols import Embedder
from curate.analysis.runtime.graph_torch import same_pad
from curate.analysis.runtime.tfjs_torch import TFJSModule, op_types, read_weights

sys.path.insert(0, str(ROOT / "bench"))
from tfjs_reference import EXTRA, INPUTS, model_input  # noqa: E402

REFERENCE = ROOT / "datasets" / "tfjs_reference.npz"


def _model(stem: str) -> Path | None:
    for folder in (DATA, EXTRA):
        if (folder / f"{stem}.json").exists():
            return folder / f"{stem}.json"
    return None


def test_tensorflow_same_padding_puts_the_odd_pixel_after():
    assert same_pad(224, 3, 2) == (0, 1)
    assert same_pad(112, 3, 1) == (1, 1)
    assert same_pad(7, 7, 1) == (3, 3)


def test_faceres_is_shipped_with_its_licence_and_float16_weights_dequantize():
    assert (DATA / "faceres.json").exists() and (DATA / "faceres.bin").exists()
    assert (DATA / "LICENSE").exists() and (DATA / "NOTICE.md").exists()
    spec = json.loads((DATA / "faceres.json").read_text())
    quantized = [w for g in spec["weightsManifest"] for w in g["weights"] if w.get("quantization")]
    assert quantized and all(w["quantization"]["dtype"] == "float16" for w in quantized)
    weights = read_weights(DATA / "faceres.json")
    assert all(v.dtype in (np.float32, np.int32) for v in weights.values())
    assert weights["feats/kernel"].shape == (1024, 256)
    assert op_types(DATA / "faceres.json")["DepthwiseConv2dNative"] == 13


@pytest.mark.parametrize("stem", sorted(INPUTS))
def test_torch_runs_the_model_like_tfjs_itself(stem):
    """Outputs of TFJS 4.22 (pure-JS CPU backend, stored by bench/tfjs_reference.py) on a seeded input; faceres
    ships, the other two run when the unpacked npm package is at $HUMAN_MODELS."""
    path = _model(stem)
    if path is None:
        pytest.skip(f"{stem}.json is not shipped and not in {EXTRA}")
    ref = np.load(REFERENCE)
    names = [k.split("/", 1)[1] for k in ref.files if k.startswith(stem + "/")]
    assert names, f"no reference outputs for {stem}"
    module = TFJSModule(path, names)
    got = module.run(model_input(stem))
    for name, value in zip(names, got):
        want = ref[f"{stem}/{name}"]
        assert value.shape == want.shape
        diff = float(np.abs(value - want).max())
        scale = max(float(np.abs(want).max()), 1e-3)
        print(f"{stem}/{name}: max abs diff {diff:.3g} (max |value| {scale:.3g})")
        assert diff <= 2e-6 * scale + 1e-6, f"{stem} output {name}: max abs diff {diff}"


def test_a_batch_equals_one_image_at_a_time_and_the_module_moves_devices():
    module = TFJSModule(DATA / "faceres.json", ["global_pooling/Mean"])
    x = model_input("faceres")
    together = module.run(x)[0]
    for k in range(2):
        np.testing.assert_allclose(module.run(x[k:k + 1])[0][0], together[k], atol=1e-5)
    module.to(torch.float32).to("cpu")  # .to(device) moves every weight (a GPU is used the same way)
    assert all(p.device.type == "cpu" for p in module.parameters())


def _face(width: int = 400, height: int = 360) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic image and 68 landmarks of a frontal mean face in it."""
    from curate.core.align import mean_face_2d

    marks = mean_face_2d(200, 1.0) + np.array([100.0, 90.0])
    yy, xx = np.mgrid[:height, :width]
    rgb = np.stack([(xx * 0.5) % 255, (yy * 0.7) % 255, ((xx + yy) * 0.3) % 255], axis=-1).astype(np.uint8)
    return rgb, marks


def test_crops_follow_the_landmarks():
    rgb, marks = _face()
    square = face_square(marks)  # source -> unit square
    eyes = five_points(marks)[:2].mean(axis=0)
    u = square[:, :2] @ eyes + square[:, 2]
    assert 0.3 < u[1] < 0.5 and abs(u[0] - 0.5) < 0.02  # eyes above the middle, centred
    arc = crop_matrix(marks, 112, "arcface")
    pts = five_points(marks) @ arc[:, :2].T + arc[:, 2]
    assert np.abs(pts[:2, 1] - 51.6).max() < 4 and np.abs(pts[2, 0] - 56).max() < 4
    # a shifted image gives the same crop
    shifted = np.zeros((rgb.shape[0] + 20, rgb.shape[1] + 30, 3), np.uint8)
    shifted[20:, 30:] = rgb
    emb = FaceResEmbedder(device="cpu")
    np.testing.assert_array_equal(emb.face_crop(rgb, marks), emb.face_crop(shifted, marks + [30, 20]))


def test_faceres_embedder_implements_the_protocol():
    rgb, marks = _face()
    emb = FaceResEmbedder(device="cpu")
    assert isinstance(emb, Embedder) and emb.embedding_size == 1024
    one = emb.embed(rgb, marks)
    assert one.dtype == np.float32 and one.shape == (1024,)
    assert abs(float(np.linalg.norm(one)) - 1) < 1e-5
    many = emb.embed_many(rgb, [marks, marks * 0.8 + 20])
    assert len(many) == 2
    np.testing.assert_allclose(many[0], one, atol=1e-5)
    assert float(many[0] @ many[1]) < 0.9999
    frames = emb.embed_frames([(rgb, [marks]), (rgb, [])])
    assert len(frames[0]) == 1 and frames[1] == []
    np.testing.assert_allclose(frames[0][0], one, atol=1e-5)
