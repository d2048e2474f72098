"""Kept import path: :mod:`curate.dataset.info` (``from curate.info import dataset_info`` in scripts written
before the one-folder-per-concept layout)."""
from curate.dataset.info import *  # noqa: F401,F403
from curate.dataset.info import dataset_info  # noqa: F401
