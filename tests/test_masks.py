"""The face-set's learned occlusion mask: occluder synthesis, the network, train/apply/fix on a dataset."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from train.masknet import MaskNet, OccluderBank, load_masknet, occlude, random_shape, save_masknet


def test_occluders_take_their_pixels_out_of_the_target():
    rng = np.random.default_rng(0)
    assert all(random_shape(64, np.random.default_rng(s)).any() for s in range(40))
    bank = OccluderBank(textures=[np.full((20, 20, 3), 200, np.uint8)])
    face = np.full((64, 64, 3), 0.5, np.float32)
    target = np.ones((64, 64), np.float32)
    seen = 0
    for _ in range(20):
        img, tgt = occlude(face, target, rng, bank)
        changed = np.abs(img - face).max(2) > 0.25
        assert tgt.sum() < target.sum()
        if changed.sum() > 20:  # (an occluder may be as grey as this face)
            seen += 1
            assert tgt[changed].mean() < 0.2  # clearly covered pixels left the face
    assert seen >= 10


def test_masknet_saves_loads_and_refuses_other_files(tmp_path):
    import torch
    from safetensors.torch import save_file

    from train.checkpoint import CheckpointError

    net = MaskNet(4).eval()
    x = torch.rand(2, 3, 64, 64)
    assert net(x).shape == (2, 1, 64, 64)
    path = save_masknet(tmp_path / "m.safetensors", net, 64)
    loaded, size = load_masknet(path, "cpu")
    assert size == 64 and torch.allclose(loaded(x), net(x), atol=1e-5)
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"kind": "something"})
    with pytest.raises(CheckpointError, match="not a faceset mask network"):
        load_masknet(tmp_path / "other.safetensors")


@pytest.fixture(scope="module")
def masknet(faces_dataset, tmp_path_factory) -> Path:
    """A small mask network trained on the shared face-set (64 px, a few hundred steps)."""
    from train.masknet import MaskTrainSettings
    from train.masks import mask_train

    out = tmp_path_factory.mktemp("masknet") / "mask.safetensors"
    path, summary = mask_train(faces_dataset, MaskTrainSettings(size=64, iters=600, batch=8, width=12), out=out,
                               progress=False)
    assert summary["last_loss"] < 0.6 * summary["first_loss"]
    return path


def test_mask_apply_stores_segmentations_and_fixes_become_labels(faces_dataset, dataset_name, masknet, tmp_path):
    import fiftyone as fo

    from train.masks import FIXED_FIELD, LEARNED_FIELD, fix_export, fix_import, mask_apply, training_set

    ds = fo.load_dataset(faces_dataset).clone(dataset_name, persistent=True)
    try:
        assert mask_apply(dataset_name, masknet, progress=False) == len(ds)
        ds.reload()
        first = ds.first()
        png = cv2.imread(first[LEARNED_FIELD].mask_path, cv2.IMREAD_GRAYSCALE)
        assert png.shape == cv2.imread(first.filepath).shape[:2] and 0 < (png > 127).mean() < 0.9

        out = tmp_path / "fix"
        assert fix_export(dataset_name, out, subset="B") == len(ds.match(fo.ViewField("subset") == "B"))
        sid = ds.match(fo.ViewField("subset") == "B").first().id
        painted = cv2.imread(str(out / f"{sid}_mask.png"), cv2.IMREAD_GRAYSCALE)
        painted[painted.shape[0] // 2:] = 0  # "the lower half is covered"
        cv2.imwrite(str(out / f"{sid}_mask.png"), painted)
        (out / "0123456789abcdef01234567_mask.png").write_bytes(b"not a face of this dataset")
        n, problems = fix_import(dataset_name, out)
        assert n == len(list(out.glob("*_mask.png"))) - 1 and len(problems) == 1
        data = training_set(dataset_name, hands=0)
        k = data["ids"].index(sid)
        assert data["real"][k] and data["targets"][k][painted.shape[0] // 2 + 4:].max() == 0
        assert ds[sid][FIXED_FIELD].mask_path
    finally:
        for name in (dataset_name, f"{dataset_name}-trash"):
            if fo.dataset_exists(name):
                fo.delete_dataset(name)


def test_learned_mask_keeps_a_synthetic_occluder_after_conversion(masknet, tiny_model, load_rgb, tmp_path, analyzer):
    """A face with a blue block over its mouth: the hull mask paints over the block, the learned mask keeps it."""
    from convert.blend import auto_mask_px
    from convert.pipeline import ConvertSettings, convert
    from convert.smoothing import face_scale

    rgb = load_rgb("obama.jpg").copy()
    marks = analyzer.analyze(rgb)[0].landmarks
    mouth = marks[48:68]
    (x0, y0), (x1, y1) = mouth.min(0).astype(int) - 30, mouth.max(0).astype(int) + 30
    rgb[y0:y1, x0:x1] = (30, 90, 220)
    src = tmp_path / "in" / "occluded.png"
    src.parent.mkdir()
    cv2.imwrite(str(src), rgb[:, :, ::-1])
    outs = {}
    for spec in ("hull", "learned"):
        out = tmp_path / spec
        settings = ConvertSettings(mask=spec, mask_model=str(masknet) if spec == "learned" else None)
        summary = convert([src], tiny_model, out, settings, progress=False)
        assert summary.faces_swapped == 1, summary.lines()
        outs[spec] = cv2.imread(str(next(out.rglob("*.png"))))[:, :, ::-1]
    erode, blur = auto_mask_px(face_scale(marks), None, None)
    block = np.zeros(rgb.shape[:2], np.uint8)
    block[y0:y1, x0:x1] = 1
    inner = cv2.erode(block, np.ones((2 * blur + 3,) * 2, np.uint8)) > 0  # beyond the feathered edge
    assert inner.sum() > 500
    assert np.any(outs["hull"][inner] != rgb[inner])  # the hull paints over the occluder
    assert not np.any(outs["learned"][inner] != rgb[inner])  # the learned mask leaves it untouched
    face = np.zeros_like(block)
    cv2.fillConvexPoly(face, cv2.convexHull(marks[:27].astype(np.int32)), 1)
    assert np.any(outs["learned"][(face > 0) & (block == 0)] != rgb[(face > 0) & (block == 0)])  # face swapped


def test_convert_refuses_learned_without_a_network():
    from convert.pipeline import ConvertSettings

    with pytest.raises(ValueError, match="--mask-model"):
        ConvertSettings(mask="learned,hands")
