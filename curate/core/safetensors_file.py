"""A safetensors file's header read safely: checked against the file before anything is allocated.

Shared by the face-swap model's checkpoints (``train.checkpoint``) and the mask network (``curate.masks.net``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model."""


MAX_HEADER = 64 * 2**20  # a safetensors header past this is not one of ours
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def read_header(path: Path) -> dict[str, Any]:
    """The safetensors header of a checkpoint, checked against the file before anything is allocated: its
    length, and every tensor's dtype, shape and byte range lying inside the file (CheckpointError if not)."""
    try:
        size = Path(path).stat().st_size
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            if not 2 <= header_len <= min(MAX_HEADER, size - 8):
                raise ValueError(f"header length {header_len} does not fit a {size}-byte file")
            header = json.loads(fh.read(header_len))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        data = size - 8 - header_len
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            begin, end = (int(v) for v in entry["data_offsets"])
            count = int(np.prod([int(d) for d in entry["shape"]], dtype=np.float64))
            if not 0 <= begin <= end <= data or end - begin != count * _ITEMSIZE[entry["dtype"]]:
                raise ValueError(f"tensor {name!r} claims {entry['shape']} {entry['dtype']} outside the file's data")
        return header
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__}: {exc})") from None
