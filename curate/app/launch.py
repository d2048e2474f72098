"""`faceset app`: the FiftyOne App on localhost for a face dataset, opened on the grid + A/B coverage panel."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from curate.dataset.store import fo, load_dataset
from curate.extract.workers import die_with_parent

PLUGIN_SOURCE = Path(__file__).resolve().parent / "plugin"
PLUGIN_NAME = "@faceset/curate"
PLUGIN_LINK = "faceset-curate"
PANEL = "coverage_panel"
FACE_FIELDS = ("subset", "yaw", "face_key")


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


def face_datasets() -> list[dict[str, Any]]:
    """The face datasets in the database (trash datasets left out) with their A/B counts."""
    found = []
    for name in fo.list_datasets():
        if name.endswith("-trash"):
            continue
        try:
            ds = fo.load_dataset(name)
        except Exception:  # noqa: BLE001 - a dataset another FiftyOne version wrote: not ours to list
            continue
        if all(ds.has_sample_field(f) for f in FACE_FIELDS):
            counts = ds.count_values("subset")
            found.append({"name": name, "A": counts.get("A", 0), "B": counts.get("B", 0)})
    return found


def workspace() -> fo.Space:
    """The App layout faceset opens: the sample grid with the A/B coverage panel beside it."""
    return fo.Space(orientation="horizontal", sizes=[0.5, 0.5],
                    children=[fo.Panel(type="Samples", pinned=True), fo.Panel(type=PANEL)])


def start_delegated_service() -> subprocess.Popen:
    """Run FiftyOne's local delegated-operation service beside the App (it dies with this process)."""
    code = "import sys; from fiftyone.core.cli import main; sys.argv = ['fiftyone', 'delegated', 'launch']; main()"
    return subprocess.Popen([sys.executable, "-c", code],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)


def launch(name: str, port: int = 5151, address: str = "localhost", wait: bool = True) -> fo.Session:
    """Open the FiftyOne App on a dataset with the plugin and the coverage panel; blocks until closed when ``wait``."""
    ds = load_dataset(name)
    register_plugin()
    if ds.app_config.active_fields is None:  # the faces, not 68 dots over them: landmarks are a tick away
        from fiftyone.core.odm.dataset import ActiveFields

        ds.app_config.active_fields = ActiveFields(paths=["expression"])
        ds.save()
    os.environ["FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS"] = "true"  # long jobs may be delegated to the local service
    fo.config.allow_legacy_orchestrators = True
    service = start_delegated_service()
    session = fo.launch_app(ds, port=port, address=address, auto=False, spaces=workspace())
    print(f"FiftyOne App for {name!r}: http://{address}:{port}/ (Ctrl-C to stop); the A/B coverage panel is beside "
          f"the grid, faceset operators: press ` and type 'faceset'", flush=True)
    if wait:
        try:
            session.wait(-1)
        finally:  # Ctrl-C: the App's server and the delegated-operation service stop with this command
            session.close()
            service.terminate()
    return session
