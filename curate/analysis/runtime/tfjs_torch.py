"""A TensorFlow.js graph model (``model.json`` + ``.bin`` shards) run by torch, on any device, batched.

The JSON holds a TF GraphDef (``modelTopology.node``: name, op, inputs, attributes) and a ``weightsManifest``
saying how the binary shards split into named constants (dtype, shape, and optional quantization: float16, or
uint8/uint16 with ``scale``/``min``). This module reads both — no TensorFlow, no node — and builds a torch module
that executes the nodes in dependency order with the file's own weights. Only the operators listed in ``OPS``
are implemented (an unknown one is an error naming it); TensorFlow's SAME/VALID/EXPLICIT padding (odd pixel
after), NHWC axes and broadcasting rules are followed, so outputs equal the TFJS runtime's within float32
rounding (tests/curate/analysis/runtime/test_tfjs_torch.py compares every shipped model with outputs stored by TFJS itself).

As in ``tflite_torch``, 4-D activations are held NCHW (what torch's convolutions want); operators defined on
TF's NHWC axes (pad, reshape, squeeze, mean, sum, softmax, concat) and constant operands translate their axes.
"""
from __future__ import annotations

import base64
import json
from collections import Counter
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
    same_pad,
    to_nhwc,
)

_NP_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "float16": np.float16,
              "uint8": np.uint8, "uint16": np.uint16}

_UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "Identity": lambda x: x, "Relu": F.relu, "Relu6": lambda x: x.clamp(0, 6), "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh, "Abs": torch.abs, "Square": torch.square, "Rsqrt": torch.rsqrt, "Sqrt": torch.sqrt,
    "Exp": torch.exp, "Neg": torch.neg, "Elu": F.elu, "Selu": F.selu,
}
_BINARY: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "Add": torch.add, "AddV2": torch.add, "BiasAdd": torch.add, "Sub": torch.sub, "Mul": torch.mul,
    "RealDiv": torch.div, "Div": torch.div, "Maximum": torch.maximum, "Minimum": torch.minimum,
    "SquaredDifference": lambda a, b: (a - b).square(), "Pow": torch.pow,
}
OPS = frozenset(_UNARY) | frozenset(_BINARY) | {
    "Const", "Placeholder", "Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative",
    "MatMul", "_FusedMatMul", "Mean", "Sum", "Max", "Reshape", "Squeeze", "ConcatV2", "Pad", "PadV2", "MaxPool",
    "AvgPool", "Softmax", "Prelu", "LeakyRelu",
}


def load_model_json(path: Path | str) -> dict[str, Any]:
    """The parsed ``model.json`` of a TFJS graph model."""
    return json.loads(Path(path).read_text())


def op_types(path: Path | str) -> Counter[str]:
    """How many nodes of each op type a TFJS graph model has."""
    return Counter(node["op"] for node in load_model_json(path)["modelTopology"]["node"])


def read_weights(path: Path | str) -> dict[str, np.ndarray]:
    """Every named weight of a TFJS model, dequantized (float16/uint8/uint16 -> float32), in its TF shape."""
    path = Path(path)
    spec = load_model_json(path)
    out: dict[str, np.ndarray] = {}
    for group in spec["weightsManifest"]:
        data = b"".join((path.parent / p).read_bytes() for p in group["paths"])
        pos = 0
        for w in group["weights"]:
            shape = tuple(int(s) for s in w["shape"])
            count = int(np.prod(shape)) if shape else 1
            quant = w.get("quantization")
            stored = quant["dtype"] if quant else w["dtype"]
            if stored not in _NP_DTYPES or w["dtype"] not in _NP_DTYPES:
                raise UnsupportedModelError(f"{path}: weight {w['name']} stored as {stored}")
            raw = np.frombuffer(data, dtype=_NP_DTYPES[stored], count=count, offset=pos)
            pos += raw.nbytes
            if quant and stored in ("uint8", "uint16"):
                value = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
            else:
                value = raw
            out[w["name"]] = np.asarray(value, dtype=_NP_DTYPES[w["dtype"]]).reshape(shape)
        if pos != len(data):
            raise UnsupportedModelError(f"{path}: {len(data) - pos} bytes of weight data left unread")
    return out


def _attr(node: dict[str, Any], key: str, default: Any = None) -> Any:
    """A node attribute as a plain Python value (ints, floats, strings, lists)."""
    a = node.get("attr", {}).get(key)
    if a is None:
        return default
    if "list" in a:
        lst = a["list"]
        if "i" in lst:
            return [int(v) for v in lst["i"]]
        if "s" in lst:
            return [base64.b64decode(v).decode() for v in lst["s"]]
        if "f" in lst:
            return [float(v) for v in lst["f"]]
        return []
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    if "i" in a:
        return int(a["i"])
    if "f" in a:
        return float(a["f"])
    if "b" in a:
        return bool(a["b"])
    if "type" in a:
        return a["type"]
    return default


def _const_value(node: dict[str, Any]) -> np.ndarray | None:
    """The value of a Const node whose tensor is inline in the graph (not in the weights manifest)."""
    tensor = node.get("attr", {}).get("value", {}).get("tensor")
    if not tensor:
        return None
    dims = tuple(int(d.get("size", 0)) for d in tensor.get("tensorShape", {}).get("dim", []))
    dtype = {"DT_FLOAT": np.float32, "DT_INT32": np.int32}.get(tensor.get("dtype"), np.float32)
    if "tensorContent" in tensor:
        return np.frombuffer(base64.b64decode(tensor["tensorContent"]), dtype=dtype).reshape(dims)
    values = tensor.get("floatVal") or tensor.get("intVal") or [0]
    return np.full(dims, values[0], dtype=dtype) if len(values) == 1 else np.asarray(values, dtype).reshape(dims)


def _as_operand(c: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A constant in TF layout, broadcastable against an activation held as torch holds it."""
    if like.dim() == 4 and c.dim() >= 1:
        c = c.reshape((1,) * (4 - c.dim()) + tuple(c.shape)) if c.dim() < 4 else c
        return c.permute(0, 3, 1, 2)
    return c


class TFJSModule(GraphModule):
    """A TFJS graph model as a torch module: ``forward(NCHW float) -> list of outputs`` (TF shapes, batch first,
    in ``output_names`` order); ``run(NHWC numpy)`` is the numpy convenience."""

    def __init__(self, path: Path | str, outputs: list[str] | None = None):
        super().__init__(path)
        spec = load_model_json(path)
        nodes = {n["name"]: n for n in spec["modelTopology"]["node"]}
        weights = read_weights(path)
        self._const_index: dict[str, int] = {}
        for name, node in nodes.items():
            if node["op"] == "Const":
                value = weights.get(name)
                value = _const_value(node) if value is None else value
                if value is None:
                    raise UnsupportedModelError(f"{self.path}: constant {name} has no value")
                self._const[name] = value
        self.input_names = [n for n, node in nodes.items() if node["op"] == "Placeholder"]
        if len(self.input_names) != 1:
            raise UnsupportedModelError(f"{self.path}: {len(self.input_names)} inputs (one supported)")
        self.output_names = outputs or self._default_outputs(spec, nodes)
        self.graph_inputs, self.graph_outputs = self.input_names, self.output_names
        for name in self._order(nodes, self.output_names):
            node = nodes[name]
            if node["op"] not in ("Const", "Placeholder"):
                self._compile(node)
        del self._const
        self.requires_grad_(False)

    # --- building ---------------------------------------------------------------------------------------------

    @staticmethod
    def _default_outputs(spec: dict[str, Any], nodes: dict[str, Any]) -> list[str]:
        """The signature's outputs, else every node nothing else reads."""
        sig = spec.get("signature") or spec.get("userDefinedMetadata", {}).get("signature") or {}
        names = [v.get("name", k).split(":")[0] for k, v in sig.get("outputs", {}).items()]
        if names and all(n in nodes for n in names):
            return names
        used = {i.lstrip("^").split(":")[0] for n in nodes.values() for i in n.get("input", [])}
        return [n for n, node in nodes.items() if n not in used and node["op"] not in ("Const", "Placeholder")]

    @staticmethod
    def _inputs(node: dict[str, Any]) -> list[str]:
        """A node's data inputs (control inputs dropped, ``:0`` suffixes removed)."""
        names = []
        for i in node.get("input", []):
            if i.startswith("^"):
                continue
            base, _, port = i.partition(":")
            if port not in ("", "0"):
                raise UnsupportedModelError(f"input {i}: only single-output ops are supported")
            names.append(base)
        return names

    def _order(self, nodes: dict[str, Any], outputs: list[str]) -> list[str]:
        """The nodes the outputs need, each after its inputs."""
        order: list[str] = []
        seen: set[str] = set()
        for out in outputs:
            stack = [(out, False)]
            while stack:
                name, done = stack.pop()
                if done:
                    order.append(name)
                    continue
                if name in seen:
                    continue
                if name not in nodes:
                    raise UnsupportedModelError(f"{self.path}: no node {name}")
                seen.add(name)
                stack.append((name, True))
                stack.extend((i, False) for i in reversed(self._inputs(nodes[name])) if i not in seen)
        return order

    def _const_param(self, name: str) -> int:
        if name not in self._const_index:
            self._const_index[name] = self._param(self._const[name])
        return self._const_index[name]

    def _fused(self, node: dict[str, Any], extra: list[str]) -> Callable[[torch.Tensor], torch.Tensor]:
        """The bias and activation a ``_Fused*`` node applies after its main op."""
        ops = _attr(node, "fused_ops", [])
        steps: list[Callable[[torch.Tensor], torch.Tensor]] = []
        args = iter(extra)
        for op in ops:
            if op == "BiasAdd":
                b = self._const_param(next(args))
                steps.append(lambda x, b=b: x + _as_operand(self._w(b), x))
            elif op == "Prelu":
                a = self._const_param(next(args))
                steps.append(lambda x, a=a: torch.where(x >= 0, x, x * _as_operand(self._w(a), x)))
            elif op == "LeakyRelu":
                alpha = float(_attr(node, "leakyrelu_alpha", 0.2))
                steps.append(lambda x, alpha=alpha: F.leaky_relu(x, alpha))
            elif op in _UNARY:
                steps.append(_UNARY[op])
            else:
                raise UnsupportedModelError(f"{self.path}: fused op {op} in {node['name']}")

        def apply(x: torch.Tensor) -> torch.Tensor:
            for step in steps:
                x = step(x)
            return x
        return apply

    def _padding(self, node: dict[str, Any]) -> str | list[int]:
        """'SAME', 'VALID', or an explicit NCHW pad list for F.pad."""
        mode = _attr(node, "padding", "VALID")
        if mode == "EXPLICIT":
            p = _attr(node, "explicit_paddings", [0] * 8)  # NHWC (before, after) pairs
            return [p[4], p[5], p[2], p[3]]
        if mode not in ("SAME", "VALID"):
            raise UnsupportedModelError(f"{self.path}: padding {mode} in {node['name']}")
        return mode

    def _compile(self, node: dict[str, Any]) -> None:
        op, name = node["op"], node["name"]
        ins = self._inputs(node)
        const = self._const
        if _attr(node, "data_format", "NHWC") not in ("NHWC", None):
            raise UnsupportedModelError(f"{self.path}: data_format {_attr(node, 'data_format')} in {name}")
        if op in ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):
            depthwise = "Depthwise" in op
            w = const[ins[1]]  # TF: (kh, kw, in, out) or depthwise (kh, kw, in, multiplier)
            kh, kw = w.shape[:2]
            if depthwise:
                weight = self._param(w.transpose(2, 3, 0, 1).reshape(-1, 1, kh, kw))
                groups = w.shape[2]
            else:
                weight = self._param(w.transpose(3, 2, 0, 1))
                groups = 1
            s, d = _attr(node, "strides", [1, 1, 1, 1]), _attr(node, "dilations", [1, 1, 1, 1])
            stride, dil = (s[1], s[2]), (d[1], d[2])
            pad = self._padding(node)
            post = self._fused(node, ins[2:]) if op.startswith(("_Fused", "Fused")) else (lambda x: x)

            def conv(x: torch.Tensor) -> torch.Tensor:
                if pad == "SAME":
                    x = pad_same(x, (kh, kw), stride, dil)
                elif pad != "VALID":
                    x = F.pad(x, pad)
                return post(F.conv2d(x, self._w(weight), None, stride, 0, dil, groups))
            self._add(conv, ins[:1], name)
        elif op in ("MatMul", "_FusedMatMul"):
            if ins[1] not in const:
                raise UnsupportedModelError(f"{self.path}: {name} multiplies two activations")
            w = const[ins[1]]
            if _attr(node, "transpose_a", False):
                raise UnsupportedModelError(f"{self.path}: transpose_a in {name}")
            weight = self._param(w if _attr(node, "transpose_b", False) else w.T)  # torch: (out, in)
            post = self._fused(node, ins[2:]) if op == "_FusedMatMul" else (lambda x: x)
            self._add(lambda x: post(F.linear(x, self._w(weight))), ins[:1], name)
        elif op in _UNARY:
            self._add(_UNARY[op], ins[:1], name)
        elif op in _BINARY:
            self._binary(_BINARY[op], ins, name)
        elif op == "Prelu":
            a = self._const_param(ins[1])
            self._add(lambda x: torch.where(x >= 0, x, x * _as_operand(self._w(a), x)), ins[:1], name)
        elif op == "LeakyRelu":
            alpha = float(_attr(node, "alpha", 0.2))
            self._add(lambda x: F.leaky_relu(x, alpha), ins[:1], name)
        elif op in ("Mean", "Sum", "Max"):
            axes = [int(a) for a in np.atleast_1d(const[ins[1]])]
            keep = bool(_attr(node, "keep_dims", False))
            reduce = {"Mean": torch.mean, "Sum": torch.sum, "Max": torch.amax}[op]
            self._add(lambda x: from_nhwc(reduce(to_nhwc(x), dim=axes, keepdim=keep)), ins[:1], name)
        elif op == "Softmax":
            self._add(lambda x: from_nhwc(torch.softmax(to_nhwc(x), dim=-1)), ins[:1], name)
        elif op == "Reshape":
            shape = [int(v) for v in np.atleast_1d(const[ins[1]])]

            def reshape(x: torch.Tensor) -> torch.Tensor:
                target = list(shape)
                if target and target[0] in (-1, 1) and -1 not in target[1:]:
                    target[0] = x.shape[0]  # the batch axis follows the input's batch
                return from_nhwc(to_nhwc(x).reshape(target))
            self._add(reshape, ins[:1], name)
        elif op == "Squeeze":
            dims = _attr(node, "squeeze_dims", [])

            def squeeze(x: torch.Tensor) -> torch.Tensor:
                y = to_nhwc(x)
                axes = [a % y.dim() for a in dims] or [a for a in range(y.dim()) if y.shape[a] == 1 and a > 0]
                for a in sorted(axes, reverse=True):
                    y = y.squeeze(a)
                return from_nhwc(y)
            self._add(squeeze, ins[:1], name)
        elif op == "ConcatV2":
            axis = int(np.asarray(const[ins[-1]]).ravel()[0])
            self._add(lambda *xs: torch.cat(xs, nhwc_axis(axis, xs[0].dim())), ins[:-1], name)
        elif op in ("Pad", "PadV2"):
            pads = np.asarray(const[ins[1]]).astype(int)  # TF rows (before, after), NHWC for 4-D
            value = float(np.asarray(const[ins[2]]).ravel()[0]) if op == "PadV2" else 0.0
            if pads[0].any():
                raise UnsupportedModelError(f"{self.path}: {name} pads the batch axis")
            order = [2, 1, 3] if len(pads) == 4 else list(range(len(pads) - 1, 0, -1))  # NCHW: W, H, C
            flat = [int(v) for axis in order for v in pads[axis]]
            self._add(lambda x: F.pad(x, flat, value=value), ins[:1], name)
        elif op in ("MaxPool", "AvgPool"):
            k, s = _attr(node, "ksize"), _attr(node, "strides")
            kernel, stride = (k[1], k[2]), (s[1], s[2])
            pad = self._padding(node)
            if pad not in ("SAME", "VALID"):
                raise UnsupportedModelError(f"{self.path}: explicit padding in {name}")

            def pool(x: torch.Tensor) -> torch.Tensor:
                ph = same_pad(x.shape[2], kernel[0], stride[0]) if pad == "SAME" else (0, 0)
                pw = same_pad(x.shape[3], kernel[1], stride[1]) if pad == "SAME" else (0, 0)
                if op == "MaxPool":
                    return F.max_pool2d(F.pad(x, (*pw, *ph), value=float("-inf")), kernel, stride)
                total = F.avg_pool2d(F.pad(x, (*pw, *ph)), kernel, stride)
                if pad == "VALID" or not any(ph + pw):
                    return total
                ones = F.pad(torch.ones_like(x[:1, :1]), (*pw, *ph))  # TF averages over real pixels only
                return total / F.avg_pool2d(ones, kernel, stride)
            self._add(pool, ins[:1], name)
        else:
            raise UnsupportedModelError(f"{self.path}: operator {op} ({name}) is not implemented")

    def _binary(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], ins: list[str], out: str) -> None:
        """An elementwise operator; a constant operand becomes a weight broadcast like TF's NHWC rules."""
        a_const, b_const = ins[0] in self._const, ins[1] in self._const
        if a_const and b_const:
            raise UnsupportedModelError(f"{self.path}: {out} on two constants")
        if a_const or b_const:
            idx = self._const_param(ins[0] if a_const else ins[1])
            if a_const:
                self._add(lambda x: fn(_as_operand(self._w(idx), x), x), ins[1:2], out)
            else:
                self._add(lambda x: fn(x, _as_operand(self._w(idx), x)), ins[:1], out)
        else:
            self._add(fn, ins[:2], out)
