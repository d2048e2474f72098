"""`faceset app`: the FiftyOne App on localhost for a face dataset."""
from __future__ import annotations

from curate.store import load_dataset


def launch(name: str, port: int = 5151, address: str = "localhost", wait: bool = True):  # -> fo.Session
    """Open the FiftyOne App on a dataset; blocks until the App is closed when ``wait``."""
    import fiftyone as fo

    ds = load_dataset(name)
    session = fo.launch_app(ds, port=port, address=address, auto=False)
    print(f"FiftyOne App for {name!r}: http://{address}:{port}/ (Ctrl-C to stop)", flush=True)
    if wait:
        session.wait(-1)
    return session
