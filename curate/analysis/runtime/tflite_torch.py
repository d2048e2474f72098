"""A MediaPipe ``.tflite`` graph run by torch: the same network on a GPU, many images in one batch.

OpenCV's DNN runs the shipped TFLite models on the CPU one call at a time (the PyPI build has no CUDA). This
module reads the model file (FlatBuffers, through the ``tflite`` schema package — no TensorFlow) and builds a
torch module that executes its operators in order with the file's own weights, so the detector, FaceMesh, iris
and hand models run on whatever device torch has, with any batch size. Only the operators those models use are
implemented (an unknown one is an error naming it); TensorFlow's padding, pooling and resize rules are followed
so outputs equal TFLite's own interpreter (tests compare every shipped model with its stored outputs).

Activations are kept NCHW for 4-D tensors (what torch's convolutions want); operators defined on TFLite's NHWC
axes (pad, concatenation, reshape, mean, fully connected) translate their axes.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from curate.analysis.runtime.graph_torch import (
    GraphModule,
    UnsupportedModelError,
    from_nhwc,
    nhwc_axis,
    pad_same,
    to_nhwc,
)

_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64}
_ACTS: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {
    0: lambda x: x, 1: F.relu, 2: lambda x: x.clamp(-1, 1), 3: lambda x: x.clamp(0, 6), 4: torch.tanh,
}


def _options(op: Any, cls: Any) -> Any:
    table = op.BuiltinOptions()
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _act(code: int) -> Callable[[torch.Tensor], torch.Tensor]:
    if code not in _ACTS:
        raise UnsupportedModelError(f"fused activation {code}")
    return _ACTS[code]


class TFLiteModule(GraphModule):
    """A TFLite model's subgraph 0 as a torch module: ``forward(NCHW float) -> list of outputs (TFLite shapes
    with any batch)``; ``run(NHWC numpy)`` is the numpy convenience."""

    def __init__(self, path: Path | str):
        super().__init__(path)
        import tflite

        model = tflite.Model.GetRootAsModel(Path(path).read_bytes(), 0)
        graph = model.Subgraphs(0)
        self._graph, self._model, self._tfl = graph, model, tflite
        self._names = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            buf = model.Buffers(tensor.Buffer())
            if buf is not None and buf.DataLength() > 0:
                dtype = _DTYPES.get(tensor.Type())
                if dtype is None:
                    raise UnsupportedModelError(f"{path}: tensor type {tensor.Type()}")
                shape = tuple(int(s) for s in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
                self._const[t] = np.frombuffer(buf.DataAsNumpy().tobytes(), dtype=dtype).reshape(shape)
        self.inputs = [graph.Inputs(i) for i in range(graph.InputsLength())]
        self.outputs = [graph.Outputs(i) for i in range(graph.OutputsLength())]
        self.output_names = [graph.Tensors(t).Name().decode() for t in self.outputs]
        self.graph_inputs, self.graph_outputs = self.inputs, self.outputs
        for i in range(graph.OperatorsLength()):
            self._compile(graph.Operators(i))
        del self._graph, self._model, self._tfl, self._const
        self.requires_grad_(False)

    # --- building ---------------------------------------------------------------------------------------------

    def _shape(self, t: int) -> tuple[int, ...]:
        tensor = self._graph.Tensors(t)
        return tuple(int(s) for s in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()

    def _compile(self, op: Any) -> None:
        tfl = self._tfl
        code = self._model.OperatorCodes(op.OpcodeIndex())
        name = self._names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        ins = [op.Inputs(k) for k in range(op.InputsLength())]
        out = op.Outputs(0)
        const = self._const
        if name == "DEQUANTIZE" and ins[0] in const:  # fp16 weights: folded at load
            const[out] = const[ins[0]].astype(np.float32)
            return
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            depthwise = name == "DEPTHWISE_CONV_2D"
            opts = _options(op, tfl.DepthwiseConv2DOptions if depthwise else tfl.Conv2DOptions)
            w = const[ins[1]]
            bias = self._param(const[ins[2]]) if len(ins) > 2 and ins[2] >= 0 else None
            weight = self._param(w.transpose(3, 0, 1, 2) if depthwise else w.transpose(0, 3, 1, 2))
            kh, kw = w.shape[1:3]
            stride = (opts.StrideH(), opts.StrideW())
            dil = (opts.DilationHFactor() or 1, opts.DilationWFactor() or 1)
            same, act = opts.Padding() == tfl.Padding.SAME, _act(opts.FusedActivationFunction())
            groups = w.shape[3] // max(opts.DepthMultiplier(), 1) if depthwise else 1

            def conv(x: torch.Tensor) -> torch.Tensor:
                if same:
                    x = pad_same(x, (kh, kw), stride, dil)
                b = self._w(bias) if bias is not None else None
                return act(F.conv2d(x, self._w(weight), b, stride, 0, dil, groups))
            self._add(conv, ins[:1], out)
        elif name == "MAX_POOL_2D":
            opts = _options(op, tfl.Pool2DOptions)
            k, s = (opts.FilterHeight(), opts.FilterWidth()), (opts.StrideH(), opts.StrideW())
            same, act = opts.Padding() == tfl.Padding.SAME, _act(opts.FusedActivationFunction())

            def pool(x: torch.Tensor) -> torch.Tensor:
                if same:
                    x = pad_same(x, k, s, value=float("-inf"))
                return act(F.max_pool2d(x, k, s))
            self._add(pool, ins[:1], out)
        elif name == "ADD":
            act = _act(_options(op, tfl.AddOptions).FusedActivationFunction())
            self._binary(lambda a, b: act(a + b), ins, out)
        elif name == "RELU":
            self._add(F.relu, ins[:1], out)
        elif name == "LOGISTIC":
            self._add(torch.sigmoid, ins[:1], out)
        elif name == "PRELU":
            alpha = const[ins[1]].reshape(-1)
            a = self._param(alpha)

            def prelu(x: torch.Tensor) -> torch.Tensor:
                slope = self._w(a).view(1, -1, 1, 1) if x.dim() == 4 else self._w(a)
                return torch.where(x >= 0, x, x * slope)
            self._add(prelu, ins[:1], out)
        elif name == "PAD":
            pads = const[ins[1]].astype(int)  # NHWC rows (before, after)
            if pads[0].any():
                raise UnsupportedModelError(f"{self.path}: PAD on the batch axis")
            order = [2, 1, 3] if len(pads) == 4 else list(range(len(pads) - 1, 0, -1))  # NCHW: W, H, C
            flat = [int(v) for axis in order for v in pads[axis]]
            self._add(lambda x: F.pad(x, flat), ins[:1], out)
        elif name == "RESIZE_BILINEAR":
            opts = _options(op, tfl.ResizeBilinearOptions)
            size = tuple(int(v) for v in const[ins[1]])
            if opts.AlignCorners():
                self._add(lambda x: F.interpolate(x, size=size, mode="bilinear", align_corners=True), ins[:1], out)
            elif opts.HalfPixelCenters():
                self._add(lambda x: F.interpolate(x, size=size, mode="bilinear", align_corners=False), ins[:1], out)
            else:
                raise UnsupportedModelError(f"{self.path}: RESIZE_BILINEAR without half-pixel centres")
        elif name == "RESHAPE":
            shape = self._shape(out)
            self._add(lambda x: from_nhwc(to_nhwc(x).reshape(x.shape[0], *shape[1:])), ins[:1], out)
        elif name == "CONCATENATION":
            opts = _options(op, tfl.ConcatenationOptions)
            axis, act = opts.Axis(), _act(opts.FusedActivationFunction())
            rank = len(self._shape(out))
            self._add(lambda *xs: act(torch.cat(xs, nhwc_axis(axis, rank))), ins, out)
        elif name == "MEAN":
            keep = _options(op, tfl.ReducerOptions).KeepDims()
            axes = [int(a) for a in np.atleast_1d(const[ins[1]])]
            self._add(lambda x: from_nhwc(to_nhwc(x).mean(dim=axes, keepdim=bool(keep))), ins[:1], out)
        elif name == "FULLY_CONNECTED":
            opts = _options(op, tfl.FullyConnectedOptions)
            act = _act(opts.FusedActivationFunction())
            weight = self._param(const[ins[1]])
            bias = self._param(const[ins[2]]) if len(ins) > 2 and ins[2] >= 0 else None
            shape = self._shape(out)

            def dense(x: torch.Tensor) -> torch.Tensor:
                y = F.linear(to_nhwc(x).reshape(x.shape[0], -1), self._w(weight),
                             self._w(bias) if bias is not None else None)
                return act(y).reshape(x.shape[0], *shape[1:])
            self._add(dense, ins[:1], out)
        else:
            raise UnsupportedModelError(f"{self.path}: operator {name} is not implemented")

    def _binary(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], ins: list[int], out: int) -> None:
        """An elementwise operator; a constant operand becomes a weight laid out like the activations."""
        if ins[1] in self._const or ins[0] in self._const:
            c_in, x_in = (ins[1], ins[0]) if ins[1] in self._const else (ins[0], ins[1])
            value = self._const[c_in].astype(np.float32)
            value = value.transpose(0, 3, 1, 2) if value.ndim == 4 else value
            idx = self._param(value)

            def with_const(x: torch.Tensor) -> torch.Tensor:
                c = self._w(idx)
                if x.dim() == 4 and c.dim() in (1, 3):  # NHWC-broadcast (C,) or (1, 1, C) onto NCHW
                    c = c.reshape(1, -1, 1, 1)
                return fn(x, c)
            self._add(with_const, [x_in], out)
        else:
            self._add(fn, ins, out)
