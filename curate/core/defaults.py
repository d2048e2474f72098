"""A library function's keyword defaults, for the front ends (the CLI, the App's operators, the demo): their
option defaults are read from the function they call, never typed again."""
from __future__ import annotations

import inspect
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any


def keyword_defaults(func: Callable[..., Any]) -> SimpleNamespace:
    """The defaults of ``func``'s parameters by name (``keyword_defaults(f).threshold``)."""
    return SimpleNamespace(**{p.name: p.default for p in inspect.signature(func).parameters.values()
                              if p.default is not p.empty})
