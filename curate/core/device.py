"""Which torch device runs a model: the one place that decides it (analysis, training, masks, conversion)."""
from __future__ import annotations

import os
from typing import Any


def torch_device(name: str | None = "auto", mps: bool = True) -> Any:
    """A ``torch.device``: ``name`` as given, or for "auto"/None CUDA when torch sees a GPU (this process's
    ``LOCAL_RANK`` one under torchrun), else Apple MPS (with ``mps``: training; the analysis models stay off it),
    else the CPU."""
    import torch

    if name not in (None, "auto"):
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if mps and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def on_gpu(name: str | None = "auto") -> bool:
    """Whether ``torch_device(name, mps=False)`` is a CUDA GPU."""
    return torch_device(name, mps=False).type == "cuda"
