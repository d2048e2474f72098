"""Kept import path: :mod:`curate.dataset.views` (``curate.views.filter_view`` / ``save_filter`` in scripts
written before the one-folder-per-concept layout)."""
from curate.dataset.views import filter_view, parse_condition, save_filter

__all__ = ["filter_view", "parse_condition", "save_filter"]
