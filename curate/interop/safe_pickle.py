"""A pickle loader for faceswap/DeepFaceLab metadata that builds plain data and numpy arrays, nothing else.

Those files are pickles, and a pickle can name any callable to run on load. This Unpickler resolves only the
globals numpy needs to rebuild arrays and scalars; any other global (os.system, builtins.eval, a class)
raises UnsafePickleError naming it, before anything is called.
"""
from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class FormatError(ValueError):
    """A file of a known format whose content is not what the format holds."""


class UnsafePickleError(FormatError):
    """The data names something other than plain data and numpy arrays."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _NUMPY_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refusing to load {module}.{name}: only plain data and numpy arrays are allowed") from None


def safe_loads(data: bytes) -> Any:
    """Unpickle bytes allowing only plain Python data and numpy arrays."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # truncated or not a pickle at all
        raise FormatError(f"not a readable pickle ({type(exc).__name__}: {exc})") from None


def plain(value: Any) -> Any:
    """Numpy arrays/scalars to lists/numbers, recursively (for JSON and literal_eval headers)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
