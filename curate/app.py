"""`faceset app`: the FiftyOne App on localhost for a face dataset, with faceset's plugin registered."""
from __future__ import annotations

import os
from pathlib import Path

from curate.store import fo, load_dataset

PLUGIN_SOURCE = Path(__file__).resolve().parent / "plugins" / "faceset"
PLUGIN_NAME = "@faceset/curate"
PLUGIN_LINK = "faceset-curate"


def register_plugin() -> Path:
    """Link faceset's App plugin into FiftyOne's plugins dir (FIFTYONE_PLUGINS_DIR); returns the link."""
    root = Path(fo.config.plugins_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    link = root / PLUGIN_LINK
    if link.is_symlink() and Path(os.readlink(link)) != PLUGIN_SOURCE:
        link.unlink()  # an older install of faceset
    if not link.exists():
        link.symlink_to(PLUGIN_SOURCE, target_is_directory=True)
    return link


def launch(name: str, port: int = 5151, address: str = "localhost", wait: bool = True) -> fo.Session:
    """Open the FiftyOne App on a dataset with the plugin; blocks until the App is closed when ``wait``."""
    ds = load_dataset(name)
    register_plugin()
    session = fo.launch_app(ds, port=port, address=address, auto=False)
    print(f"FiftyOne App for {name!r}: http://{address}:{port}/ (Ctrl-C to stop); "
          f"faceset operators: press ` in the App and type 'faceset'", flush=True)
    if wait:
        session.wait(-1)
    return session
