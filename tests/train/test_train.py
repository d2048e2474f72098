"""Training on faces exported from the sample media: loss goes down, exact resume, broken checkpoints, DDP."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from curate.core.quality import hull_mask
from train.checkpoint import list_checkpoints, read_checkpoint
from train.config import ARCHS, ModelConfig
from train.data import augment, random_warp
from train.model import FaceSwapModel
from train.trainer import TrainSettings, train

TINY = {"enc_ch": 8, "ae_dims": 32, "dec_ch": 8, "batch": 4, "workers": 0}


def test_models_shapes_and_swap():
    for arch in ARCHS:
        model = FaceSwapModel(ModelConfig(arch=arch, size=64, enc_ch=8, ae_dims=16, dec_ch=8))
        x = torch.rand(2, 3, 64, 64)
        rgb, mask = model(x, "A")
        assert rgb.shape == (2, 3, 64, 64) and mask.shape == (2, 1, 64, 64)
        assert model.swap(x, "B")[0].shape == (2, 3, 64, 64)


def test_augmentation_keeps_the_face_under_the_mask():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    pts = np.stack(np.meshgrid(np.linspace(20, 44, 17), [20, 44])).reshape(2, -1).T[:68]
    pts = np.r_[pts, pts][:68].astype(np.float32)
    warped, target, mask, weight = augment(img, pts, rng, erode=0, feature_weight=3.0)
    assert warped.shape == target.shape == (64, 64, 3) and mask.shape == weight.shape == (64, 64)
    assert 0.05 < mask.mean() < 0.5 and weight.max() == 3.0
    assert hull_mask(pts, 64, erode=3).sum() < hull_mask(pts, 64).sum()
    assert not np.array_equal(random_warp(target, rng), target)


def _settings(export_dirs, model_dir, **kw):
    a, b = export_dirs
    return TrainSettings(str(a), str(b), str(model_dir), **{**TINY, "preview_every": 10, "save_every": 10, **kw})


def test_training_lowers_the_loss_and_writes_feedback(export_dirs, tmp_path):
    result = train(_settings(export_dirs, tmp_path / "m", iters=60, lr=5e-4), progress=False)
    first = np.mean([l[1] + l[2] for l in result.losses[:10]])
    last = np.mean([l[1] + l[2] for l in result.losses[-10:]])
    print(f"loss first 10: {first:.4f}, last 10: {last:.4f}")
    assert last < 0.8 * first
    assert Image.open(tmp_path / "m" / "preview.png").size[0] > 64 * 6
    assert (tmp_path / "m" / "losses.png").is_file()
    assert (tmp_path / "m" / "losses.csv").read_text().count("\n") == 61
    assert len(list_checkpoints(tmp_path / "m")) == 3  # keep the last 3
    alignment = json.loads((tmp_path / "m" / "model.json").read_text())["alignment"]
    assert alignment == {"coverage": 0.75, "backend": "mediapipe"}  # what conversion must align with


@pytest.mark.parametrize("arch", ARCHS)
def test_resume_is_bit_identical(export_dirs, tmp_path, arch):
    train(_settings(export_dirs, tmp_path / "full", iters=12, arch=arch, save_every=6), progress=False)
    train(_settings(export_dirs, tmp_path / "split", iters=6, arch=arch, save_every=6), progress=False)
    train(_settings(export_dirs, tmp_path / "split", iters=12, arch=arch, save_every=6), progress=False)
    full, _ = read_checkpoint(list_checkpoints(tmp_path / "full")[-1])
    split, meta = read_checkpoint(list_checkpoints(tmp_path / "split")[-1])
    assert meta["iteration"] == 12 and full.keys() == split.keys()
    # weights and optimizer state; the torch RNG differs only by the DataLoader's per-epoch seed draw
    assert all(torch.equal(full[k], split[k]) for k in full if k.startswith(("model.", "optim.")))
    full_log = (tmp_path / "full" / "losses.csv").read_text().splitlines()
    split_log = (tmp_path / "split" / "losses.csv").read_text().splitlines()
    assert [ln.split(",")[:3] for ln in full_log] == [ln.split(",")[:3] for ln in split_log]


def test_corrupt_checkpoint_is_reported_and_the_previous_used(export_dirs, tmp_path, capsys):
    train(_settings(export_dirs, tmp_path / "m", iters=20), progress=False)
    ckpts = list_checkpoints(tmp_path / "m")
    ckpts[-1].write_bytes(ckpts[-1].read_bytes()[:1000])
    result = train(_settings(export_dirs, tmp_path / "m", iters=25), progress=False)
    err = capsys.readouterr().err
    assert f"checkpoint {ckpts[-1]} is unreadable" in err
    assert result.losses[0][0] == 11  # resumed from iteration 10
    assert ckpts[0].exists()


def _crafted(good: Path, how: str) -> bytes:
    """A checkpoint file made from a good one, with a hostile header."""
    import json as _json

    data = good.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = _json.loads(data[8:8 + n])
    if how == "huge header length":
        return (2**40).to_bytes(8, "little") + data[8:]
    if how == "tensor claims 120 GB":
        name = next(k for k in header if k.startswith("model."))
        header[name]["shape"] = [30_000, 1_000_000]
    elif how == "offsets past the end":
        name = next(k for k in header if k.startswith("model."))
        header[name]["data_offsets"] = [0, 2**50]
    elif how == "header not an object":
        header = [1, 2, 3]
    raw = _json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data[8 + n:]


@pytest.mark.parametrize("how", ["huge header length", "tensor claims 120 GB", "offsets past the end", "header not an object"])
def test_crafted_checkpoints_fall_back_with_one_line(export_dirs, tmp_path, capsys, how):
    from convert.swapper import Swapper

    train(_settings(export_dirs, tmp_path / "m", iters=10), progress=False)
    good = list_checkpoints(tmp_path / "m")[-1]
    bad = good.with_name("checkpoint_00000099.safetensors")
    bad.write_bytes(_crafted(good, how))
    swapper = Swapper(tmp_path / "m", "a2b", "cpu")  # conversion loads the previous checkpoint
    assert swapper.iteration == 10
    result = train(_settings(export_dirs, tmp_path / "m", iters=12), progress=False)  # so does training
    assert result.losses[0][0] == 11
    err = capsys.readouterr().err
    assert err.count(f"checkpoint {bad} is unreadable") >= 2 and "Traceback" not in err
    assert all(line.startswith("faceset: warning:") for line in err.splitlines() if str(bad) in line)


def test_ddp_two_gloo_processes_run_a_step(export_dirs, tmp_path):
    a, b = export_dirs
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "faceset",
           "train", "--a", str(a), "--b", str(b), "--model", str(tmp_path / "ddp"), "--iters", "2", "--batch", "2",
           "--enc-ch", "8", "--ae-dims", "16", "--dec-ch", "8", "--workers", "0", "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_checkpoint(list_checkpoints(tmp_path / "ddp")[-1])[1]["iteration"] == 2
