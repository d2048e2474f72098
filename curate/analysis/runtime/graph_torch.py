"""What the TFLite and TFJS graph runners share: TensorFlow's padding and axes, and the step-list module.

Both runners (``tflite_torch``, ``tfjs_torch``) hold 4-D activations NCHW (what torch's convolutions want)
and translate TensorFlow's NHWC axes; both compile a graph into a list of steps (function, input keys,
output key) over the file's weights, run in order by ``GraphModule.forward``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812


class UnsupportedModelError(RuntimeError):
    """The model uses an operator, attribute, layout or weight encoding a runner does not implement."""


def same_pad(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) along one axis; the odd pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int] = (1, 1),
             value: float = 0.0) -> torch.Tensor:
    """An NCHW tensor padded as TensorFlow's SAME padding wants it for this window."""
    ph = same_pad(x.shape[2], kernel[0], stride[0], dilation[0])
    pw = same_pad(x.shape[3], kernel[1], stride[1], dilation[1])
    return F.pad(x, (*pw, *ph), value=value)


def nhwc_axis(axis: int, rank: int) -> int:
    """A TensorFlow (NHWC) axis of a tensor of this rank as the axis torch holds it in."""
    axis %= rank
    return (0, 2, 3, 1)[axis] if rank == 4 else axis


def to_nhwc(x: torch.Tensor) -> torch.Tensor:
    """A 4-D NCHW tensor as NHWC (other ranks unchanged)."""
    return x.permute(0, 2, 3, 1) if x.dim() == 4 else x


def from_nhwc(x: torch.Tensor) -> torch.Tensor:
    """A 4-D NHWC tensor as NCHW (other ranks unchanged)."""
    return x.permute(0, 3, 1, 2) if x.dim() == 4 else x


class GraphModule(torch.nn.Module):
    """A compiled graph: weights as frozen parameters and steps run in order. Subclasses set ``graph_inputs``
    and ``graph_outputs`` (the keys of their tensors), fill ``_const`` while compiling and call ``_add``."""

    def __init__(self, path: Path | str):
        super().__init__()
        self.path = str(path)
        self.graph_inputs: list[Hashable] = []
        self.graph_outputs: list[Hashable] = []
        self._const: dict[Hashable, np.ndarray] = {}
        self._steps: list[tuple[Callable[..., torch.Tensor], list[Hashable], Hashable]] = []
        self._weights = torch.nn.ParameterList()

    def _param(self, array: np.ndarray) -> int:
        self._weights.append(torch.nn.Parameter(torch.from_numpy(np.array(array, dtype=np.float32)),
                                                requires_grad=False))
        return len(self._weights) - 1

    def _w(self, index: int) -> torch.Tensor:
        return self._weights[index]

    def _add(self, fn: Callable[..., torch.Tensor], ins: list[Hashable], out: Hashable) -> None:
        for t in ins:
            if t in self._const and t not in self.graph_inputs:
                raise UnsupportedModelError(f"{self.path}: constant operand {t} where an activation was expected")
        self._steps.append((fn, ins, out))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """NCHW float input -> the model's outputs (TensorFlow's shapes, batch first), in the graph's output order."""
        values: dict[Hashable, torch.Tensor] = {self.graph_inputs[0]: x}
        for fn, ins, out in self._steps:
            values[out] = fn(*(values[t] for t in ins))
        return [to_nhwc(values[t]) for t in self.graph_outputs]

    @torch.no_grad()
    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """NHWC float numpy batch -> numpy outputs, computed on the module's device."""
        device = next(self.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device).permute(0, 3, 1, 2)
        return [o.float().cpu().numpy() for o in self(x)]
