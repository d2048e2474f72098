"""The MediaPipe models run by torch: equal to TFLite's own interpreter, and the analysis they give equal to
OpenCV's, batched or not (the GPU path, checked on the CPU)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from paths import ROOT  # noqa: E402

from curate.analysis.hands import HandFinder
from curate.analysis.registry import create_analyzer
from curate.analysis.runtime.graph_torch import same_pad as _same_pad
from curate.analysis.runtime.runners import MODELS, OpenCVRunner, TorchRunner, model_net, model_path
from curate.analysis.runtime.tflite_torch import TFLiteModule
from curate.core.media import iter_video

sys.path.insert(0, str(ROOT / "bench"))
from tflite_reference import model_input, thin  # noqa: E402

REFERENCE = ROOT / "datasets" / "tflite_reference.npz"


def test_tensorflow_same_padding_puts_the_odd_pixel_after():
    assert _same_pad(192, 5, 2) == (1, 2)
    assert _same_pad(96, 3, 1) == (1, 1)
    assert _same_pad(97, 2, 2) == (0, 1)
    assert _same_pad(8, 1, 1) == (0, 0)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_torch_runs_every_shipped_model_like_tflite_itself(key):
    """Outputs of TFLite's interpreter (ai-edge-litert, stored by bench/tflite_reference.py) on a seeded input."""
    ref = np.load(REFERENCE)
    path = Path(model_path(key))
    module = TFLiteModule(path)
    size = {"iris": 64, "hand": 224}.get(key, 192)
    got = dict(zip(module.output_names, module.run(model_input(path.stem, (1, size, size, 3)))))
    names = [k.split("/", 1)[1] for k in ref.files if k.startswith(path.stem + "/")]
    assert sorted(names) == sorted(got)
    for name in names:
        want = ref[f"{path.stem}/{name}"]
        value = thin(got[name].reshape(want.shape[0], -1, *want.shape[2:]) if want.ndim == 3 else got[name])
        scale = max(float(np.abs(want).max()), 1e-3)
        np.testing.assert_allclose(value.reshape(want.shape), want, atol=2e-6 * scale + 1e-6, rtol=0,
                                   err_msg=f"{key} output {name}")


def test_a_batch_through_torch_equals_one_image_at_a_time():
    runner = TorchRunner(model_path("detector"), "cpu")
    x = np.random.default_rng(1).uniform(-1, 1, (3, 192, 192, 3)).astype(np.float32)
    together = runner(x)
    for k in range(3):
        alone = runner(x[k:k + 1])
        for name in runner.names:
            np.testing.assert_allclose(together[name][k], alone[name][0], atol=1e-4)


def test_opencv_gets_the_hand_landmarker_wrong_so_hands_always_run_by_torch():
    """Why HandFinder's landmarker is never OpenCV's: its points differ from TFLite's by pixels."""
    ref = np.load(REFERENCE)
    path = model_path("hand")
    x = model_input(Path(path).stem, (1, 224, 224, 3))
    want = ref["hand_landmark_full/Identity"]
    assert np.abs(OpenCVRunner(path)(x)["Identity"].reshape(want.shape) - want).max() > 1.0
    assert isinstance(HandFinder()._hand, TorchRunner)
    assert isinstance(model_net("detector", "opencv"), OpenCVRunner)
    with pytest.raises(ValueError, match="engine"):
        model_net("mesh", "tensorrt")


@pytest.fixture(scope="module")
def frames(samples):
    out = [rgb for i, rgb in iter_video(samples / "short_hamilton_clip.mp4", every=40)][:4]
    from curate.core.media import load_image

    return out + [load_image(samples / "two_people.jpg")]


def _same_faces(a, b, px: float, cos: float) -> None:
    assert [len(f) for f in a] == [len(f) for f in b]
    for fa, fb in zip(a, b):
        for x, y in zip(fa, fb):
            assert np.abs(np.subtract(x.bbox, y.bbox)).max() < px
            assert np.abs(x.landmarks - y.landmarks).max() < px
            assert x.landmarks_ok == y.landmarks_ok
            assert float(np.dot(x.embedding, y.embedding)) > cos
            if x.eyes is not None:
                assert np.abs(x.eyes - y.eyes).max() < px


def test_batched_analysis_equals_frame_by_frame(frames):
    """analyze_many sends all frames' regions, then all faces, through each model at once: same faces."""
    mp = create_analyzer("mediapipe", engine="opencv")
    _same_faces(mp.analyze_many(frames), [mp.analyze(f) for f in frames], px=1e-3, cos=0.99999)
    assert sum(len(f) for f in mp.analyze_many(frames)) >= 5


def test_torch_engine_finds_the_same_faces_as_opencv(frames):
    """The GPU path (engine torch; here on the CPU) against OpenCV DNN: same faces within 0.05 px."""
    cv = create_analyzer("mediapipe", engine="opencv").analyze_many(frames)
    th = create_analyzer("mediapipe", engine="torch").analyze_many(frames)
    _same_faces(th, cv, px=0.05, cos=0.9999)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_models_run_there_and_find_the_same_faces(frames):
    """With CUDA, engine auto runs every model on the GPU (batched) and finds the OpenCV DNN's faces."""
    cv = create_analyzer("mediapipe", engine="opencv").analyze_many(frames)
    torch.cuda.reset_peak_memory_stats()
    gpu = create_analyzer("mediapipe", engine="auto").analyze_many(frames)
    assert torch.cuda.max_memory_allocated() > 0
    _same_faces(gpu, cv, px=0.05, cos=0.9999)
