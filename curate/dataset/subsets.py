"""The two sides of a face-swap set, defined once: A (the face to replace) and B (the face to paste in)."""
from __future__ import annotations

from typing import Any

SUBSETS = ("A", "B")


def check_subset(subset: str | None, optional: bool = False) -> str | None:
    """The subset itself, or ValueError naming the valid ones (None passes where ``optional``)."""
    if subset is None and optional:
        return None
    if subset not in SUBSETS:
        raise ValueError(f"subset must be A or B, not {subset!r}")
    return subset


def set_subset(view: Any, subset: str) -> int:
    """Put a view's faces in subset A or B; returns how many changed."""
    from fiftyone import ViewField as F

    check_subset(subset)

    ids = view.match(F("subset") != subset).values("id")
    if ids:
        moved = view._root_dataset.select(ids)
        moved.untag_samples([s for s in SUBSETS if s != subset])  # the subset is a tag too (extract sets both)
        moved.tag_samples(subset)
        moved.set_field("subset", subset).save("subset")
    return len(ids)
