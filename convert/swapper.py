"""A trained model folder, ready to swap aligned crops: weights from the newest readable safetensors
checkpoint (never a pickle), the architecture stored with them, and the alignment its faces were made with."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from convert.settings import DIRECTIONS
from curate.core.align import DEFAULT_COVERAGE
from curate.core.device import torch_device
from train.checkpoint import load_model


class Swapper:
    """Loads a model folder; ``swapper(crops)`` renders aligned crops as the other identity."""

    def __init__(self, model_dir: str | Path, direction: str = "a2b", device: str = "auto"):
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r} (use {', '.join(DIRECTIONS)})")
        self.model_dir, self.to = Path(model_dir), DIRECTIONS[direction]
        self.model, meta = load_model(self.model_dir)
        self.iteration = int(meta["iteration"])
        self.device = torch_device(device)
        self.model.to(self.device)
        self.size = int(meta["config"]["size"])
        alignment = self._alignment()
        self.coverage = float(alignment.get("coverage") or DEFAULT_COVERAGE)
        self.backend = str(alignment.get("backend") or "dlib")

    def _alignment(self) -> dict:
        path = self.model_dir / "model.json"
        try:
            return dict(json.loads(path.read_text()).get("alignment") or {})
        except (OSError, ValueError, AttributeError):
            return {}

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, S, S, 3) uint8 RGB crops -> swapped float32 RGB in [0, 1] (N, S, S, 3) and masks (N, S, S)."""
        x = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2))).to(self.device, torch.float32) / 255.0
        rgb, mask = self.model.swap(x, self.to)
        return rgb.permute(0, 2, 3, 1).cpu().numpy(), mask[:, 0].cpu().numpy()
