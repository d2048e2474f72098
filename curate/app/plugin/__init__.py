"""FiftyOne App plugin of faceset (@faceset/curate): the A/B coverage panel (``panel``) and the operators
(``operators``). `faceset app DATASET` registers it and opens the App with the panel beside the grid. The
logic lives in ``curate.app`` (coverage, selection, review) and the library; these classes only read the App's
context and answer it.
"""
from __future__ import annotations

from typing import Any

from curate.app.plugin.operators import (
    DedupeFaces,
    DrawMesh,
    ExportFaces,
    GapReport,
    IdentityReview,
    KeepFaces,
    SetSubset,
    TrashFaces,
    UmapFaces,
    UndoTrash,
)
from curate.app.plugin.panel import CoveragePanel

OPERATORS = (CoveragePanel, TrashFaces, UndoTrash, SetSubset, KeepFaces, GapReport, IdentityReview, DedupeFaces,
             ExportFaces, UmapFaces, DrawMesh)


def register(p: Any) -> None:
    """Register faceset's panel and operators with FiftyOne."""
    for cls in OPERATORS:
        p.register(cls)
