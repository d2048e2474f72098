"""Where the repository is, for tests in any folder of the tree (tests/ is on the import path)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
