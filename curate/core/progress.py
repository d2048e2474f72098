"""A progress bar for one long step that reports no progress of its own (a UMAP fit, a clustering)."""
from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def busy(desc: str, enabled: bool = True) -> Iterator[None]:
    """Show ``desc`` with the elapsed time, ticking every half second, while the block runs (on a terminal)."""
    if not enabled or not sys.stderr.isatty():
        yield
        return
    bar = tqdm(total=None, desc=desc, bar_format="{desc}: {elapsed}", leave=False, dynamic_ncols=True)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.5):
            bar.refresh()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        bar.close()
