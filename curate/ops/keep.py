"""Faces a user checked by eye and marked keep: identity cleanup and dedupe never remove them."""
from __future__ import annotations

from typing import Any

KEEP_FIELD = "keep"
KEEP_TAG = "keep"


def mark_keep(view: Any, keep: bool = True) -> int:
    """Mark a view's faces as checked by eye (or unmark them): identity review and dedupe never remove kept faces."""
    import fiftyone as fo

    ds = view._root_dataset
    if not ds.has_sample_field(KEEP_FIELD):
        ds.add_sample_field(KEEP_FIELD, fo.BooleanField)
    n = len(view)
    view.set_field(KEEP_FIELD, bool(keep)).save(KEEP_FIELD)
    (view.tag_samples if keep else view.untag_samples)(KEEP_TAG)
    return n


def kept_ids(view: Any) -> set[str]:
    """Ids of a view's faces marked keep."""
    from fiftyone import ViewField as F

    if not view._root_dataset.has_sample_field(KEEP_FIELD):
        return set()
    return set(view.match(F(KEEP_FIELD) == True).values("id"))  # noqa: E712
