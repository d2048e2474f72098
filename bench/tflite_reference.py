"""Reference outputs of the shipped MediaPipe models from TFLite's own interpreter, for tests/curate/analysis/runtime/test_tflite_torch.py.

Needs ``ai-edge-litert`` (Google's TFLite runtime), which faceset does not depend on: run it in a side venv
(``python -m venv /tmp/lit && /tmp/lit/bin/pip install ai-edge-litert``), from the repository root:

    /tmp/lit/bin/python bench/tflite_reference.py        # -> datasets/tflite_reference.npz

Each model gets a seeded uniform 0..1 input (seed: crc32 of the file's stem, so the test rebuilds it); the
outputs are stored whole, except the two detectors' anchor rows, of which every 16th is kept (size).
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "curate" / "data" / "mediapipe"
OUT = ROOT / "datasets" / "tflite_reference.npz"


def model_input(stem: str, shape: tuple[int, ...]) -> np.ndarray:
    """The seeded input a model's reference was computed on."""
    return np.random.default_rng(zlib.crc32(stem.encode())).uniform(0, 1, shape).astype(np.float32)


def thin(value: np.ndarray) -> np.ndarray:
    """Every 16th anchor row of a detector's (1, anchors, k) output; anything else whole."""
    return value[:, ::16] if value.ndim == 3 and value.shape[1] > 1000 else value


def main() -> None:
    from ai_edge_litert.interpreter import Interpreter

    out = {}
    for path in sorted(MODELS.glob("*.tflite")):
        interp = Interpreter(model_path=str(path))
        interp.allocate_tensors()
        inp = interp.get_input_details()[0]
        interp.set_tensor(inp["index"], model_input(path.stem, tuple(inp["shape"])))
        interp.invoke()
        for detail in interp.get_output_details():
            out[f"{path.stem}/{detail['name']}"] = thin(interp.get_tensor(detail["index"]))
    np.savez_compressed(OUT, **out)
    print(f"{len(out)} outputs of {len(list(MODELS.glob('*.tflite')))} models -> {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
