"""Kept import path: :mod:`curate.dataset.info` (``from curate.info import dataset_info`` in scripts written
before the one-folder-per-concept layout)."""
from curate.dataset.info import dataset_info, format_info

__all__ = ["dataset_info", "format_info"]
