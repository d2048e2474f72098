"""Filters on face fields ("yaw>30", "abs(yaw)<10", "expression==smile") as FiftyOne views, saved by name."""
from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from typing import Any

from fiftyone import ViewField as F

from curate.dataset.store import load_dataset
from curate.dataset.subsets import check_subset

_CONDITION = re.compile(r"^\s*(abs\(\s*)?([A-Za-z_][\w.]*)(\s*\))?\s*(>=|<=|==|!=|>|<|=)\s*([^<>=!\s].*?)\s*$")
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
        "==": operator.eq, "=": operator.eq, "!=": operator.ne}


def _value(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_condition(text: str, fields: Sequence[str] | None = None) -> Any:
    """A FiftyOne ViewExpression for one condition such as 'yaw>30', 'abs(pitch)<=10' or 'subset==B'."""
    m = _CONDITION.match(text)
    if not m or bool(m.group(1)) != bool(m.group(3)):
        raise ValueError(f"cannot read condition {text!r}: use FIELD OP VALUE, e.g. 'yaw>30' or 'abs(yaw)<10'")
    field, op, value = m.group(2), m.group(4), _value(m.group(5))
    if field == "expression":
        field = "expression.label"
    if fields is not None and field.split(".")[0] not in fields:
        raise ValueError(f"unknown field {field!r} in {text!r} (fields: {', '.join(sorted(fields))})")
    expr = F(field).abs() if m.group(1) else F(field)
    return _OPS[op](expr, value)


def filter_view(
    samples: Any,
    where: Sequence[str] = (),
    expression: Sequence[str] = (),
    subset: str | None = None,
    sort_by: str | None = None,
    reverse: bool = False,
) -> Any:
    """The view of samples matching every condition, any of the expression labels, and the subset."""
    check_subset(subset, optional=True)
    fields = list(samples.get_field_schema().keys())
    view = samples.view()
    if subset:
        view = view.match(F("subset") == subset)
    for condition in where:
        view = view.match(parse_condition(condition, fields))
    if expression:  # "unknown": the faces without a measured expression (no landmarks)
        labels = F("expression.label")
        wanted = labels.is_in([e for e in expression if e != "unknown"])
        view = view.match(wanted | (labels == None) if "unknown" in expression else wanted)  # noqa: E711
    if sort_by:
        if sort_by not in fields:
            raise ValueError(f"cannot sort by unknown field {sort_by!r}")
        view = view.sort_by(sort_by, reverse=reverse)
    return view


def save_filter(name: str, view_name: str, overwrite: bool = True, **criteria: Any) -> Any:
    """Build filter_view(**criteria) on a dataset and save it as a FiftyOne saved view; returns the view."""
    ds = load_dataset(name)
    view = filter_view(ds, **criteria)
    ds.save_view(view_name, view, overwrite=overwrite)
    return view
