"""The two sides of a face-swap set, defined once: A (the face to replace) and B (the face to paste in)."""
from __future__ import annotations

SUBSETS = ("A", "B")


def check_subset(subset: str | None, optional: bool = False) -> str | None:
    """The subset itself, or ValueError naming the valid ones (None passes where ``optional``)."""
    if subset is None and optional:
        return None
    if subset not in SUBSETS:
        raise ValueError(f"subset must be A or B, not {subset!r}")
    return subset
