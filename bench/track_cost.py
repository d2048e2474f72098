"""What shots and tracks cost beside extraction (issue target: at most 10 % of extraction time).

    .venv/bin/python bench/track_cost.py [--out bench/out/track_cost.txt]

For each video (the sample clip; the shared videos when ../shared is there) the default `faceset extract`
runs once into a fresh dataset (tracking included, as a user runs it), then the tracking pass runs again as
it ran inside extract: the stored cuts are dropped so the video is decoded again for its shots, and every
face is linked and written again. Printed: extraction time, tracking time (shots / linking + writes) and
their ratio; both measured in this run on this machine.
"""
from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from report import emit  # bench/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
VIDEOS = [ROOT / "datasets/samples/short_hamilton_clip.mp4", SHARED / "groundtruth/videos/single_performer.mp4",
          SHARED / "groundtruth/videos/classroom.mp4"]


def measure(video: Path) -> str:
    """One video's line: extraction vs tracking seconds."""
    from curate.analysis.frame import source_id
    from curate.extract.local import extract
    from curate.dataset.store import delete_dataset, load_dataset, set_shots
    from curate.ops.tracks.update import update_tracks

    name = f"bench-track-{uuid.uuid4().hex[:8]}"
    try:
        t0 = time.perf_counter()
        summary = extract([video], name, "A", media_dir=Path(tempfile.mkdtemp(prefix="faceset-track-")), progress=False)
        total = time.perf_counter() - t0
        ds = load_dataset(name)
        set_shots(ds, source_id(video), {})  # forgotten: the pass decodes the video again
        t1 = time.perf_counter()
        update_tracks(ds, progress=False)
        tracking = time.perf_counter() - t1
        t2 = time.perf_counter()
        update_tracks(ds, progress=False)  # cuts stored now: linking and writes alone
        linking = time.perf_counter() - t2
    finally:
        delete_dataset(name)
    extraction = total - tracking
    return (f"{video.name:<26} {summary.faces:>6} faces  extraction {extraction:7.1f} s  tracking {tracking:5.1f} s "
            f"(shots {tracking - linking:4.1f}, linking + writes {linking:4.1f})  ratio {tracking / extraction:6.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/track_cost.txt")
    args = ap.parse_args()
    lines = ["# track_cost.py: shots + tracks vs extraction (default backend, 2 workers, this machine)", ""]
    for video in VIDEOS:
        if video.exists():
            lines.append(measure(video))
    emit(lines, args.out)


if __name__ == "__main__":
    main()
