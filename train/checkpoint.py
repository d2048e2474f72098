"""Checkpoints as one safetensors file: model weights, optimizer state, iteration, RNG and the model config.

Tensors go in the safetensors body; everything else (iteration, config, optimizer hyper-parameters) is JSON
in its string metadata. Nothing is ever unpickled. Files are written to a temp name and renamed, the last K
are kept, and a checkpoint that fails to load is reported and the one before it used.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from curate.core.safetensors_file import CheckpointError, read_header  # noqa: F401 - train's own names too

PATTERN = re.compile(r"^checkpoint_(\d{8})\.safetensors$")


def checkpoint_path(model_dir: Path, iteration: int) -> Path:
    """File name of the checkpoint at an iteration."""
    return Path(model_dir) / f"checkpoint_{iteration:08d}.safetensors"


def list_checkpoints(model_dir: Path) -> list[Path]:
    """Checkpoints of a model folder, oldest first."""
    if not Path(model_dir).is_dir():
        return []
    return sorted(p for p in Path(model_dir).iterdir() if PATTERN.match(p.name))


def save_checkpoint(model_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, iteration: int,
                    config: dict[str, Any], extra: dict[str, Any] | None = None, keep: int = 3) -> Path:
    """Write a checkpoint atomically and prune all but the last ``keep``."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    state = optimizer.state_dict()
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).contiguous().cpu()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"iteration": str(iteration), "config": json.dumps(config),
            "param_groups": json.dumps(state["param_groups"]), "extra": json.dumps(extra or {}), "format": "faceset-1"}
    path = checkpoint_path(model_dir, iteration)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    for old in list_checkpoints(model_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def read_metadata(path: Path) -> dict[str, Any]:
    """Decoded metadata of a checkpoint from its (checked) safetensors header alone (CheckpointError if unreadable)."""
    try:
        raw = read_header(path).get("__metadata__") or {}
        return {"iteration": int(raw["iteration"]), "config": json.loads(raw["config"]),
                "param_groups": json.loads(raw["param_groups"]), "extra": json.loads(raw.get("extra", "{}"))}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__}: {exc})") from None


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and decoded metadata of a checkpoint (CheckpointError if unreadable)."""
    meta = read_metadata(path)  # the header is checked first: no crafted size reaches the loader
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, RuntimeError, MemoryError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__}: {exc})") from None
    return tensors, meta


def load_into(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """Restore model (and optimizer, torch RNG) from a checkpoint; returns its metadata."""
    tensors, meta = read_checkpoint(path)
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit this model: {str(exc).splitlines()[0]}") from None
    if optimizer is not None:
        try:
            state: dict[int, dict[str, torch.Tensor]] = {}
            for k, v in tensors.items():
                if k.startswith("optim."):
                    _, index, key = k.split(".", 2)
                    state.setdefault(int(index), {})[key] = v
            optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
            torch.set_rng_state(tensors["rng.torch"])
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint {path} has no usable optimizer state ({type(exc).__name__}: {exc})") from None
    return meta


def latest_loadable(model_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any] | None:
    """Load the newest checkpoint that reads; each broken newer one gets one error line and is kept on disk."""
    for path in reversed(list_checkpoints(model_dir)):
        try:
            return load_into(path, model, optimizer)
        except CheckpointError as exc:
            print(f"faceset: warning: {exc}; using the previous checkpoint", file=sys.stderr)
    return None


def model_config(model_dir: Path) -> dict[str, Any]:
    """The model config in the header of a model folder's newest checkpoint whose header reads (no tensors loaded)."""
    if not Path(model_dir).is_dir():
        raise CheckpointError(f"{model_dir}: no such model folder")
    if not list_checkpoints(model_dir):
        raise CheckpointError(f"{model_dir}: no checkpoint in this folder (train a model into it first)")
    for path in reversed(list_checkpoints(model_dir)):
        try:
            return read_metadata(path)["config"]
        except CheckpointError:
            continue
    raise CheckpointError(f"{model_dir}: no readable checkpoint")


def load_model(model_dir: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A model folder's model, built from its stored config with the newest loadable weights, in eval mode."""
    from train.config import ModelConfig
    from train.model import FaceSwapModel

    model = FaceSwapModel(ModelConfig(**model_config(model_dir)))
    meta = latest_loadable(model_dir, model)
    if meta is None:
        raise CheckpointError(f"{model_dir}: no readable checkpoint")
    return model.eval(), meta
