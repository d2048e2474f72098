"""What every bench does with its table: print it and keep it under bench/out."""
from __future__ import annotations

from pathlib import Path


def emit(lines: list[str], out: Path) -> str:
    """Print the lines and write them to ``out`` (its folder created); returns the text."""
    text = "\n".join(lines)
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    return text
