"""The labelled expression set (datasets/expressions): make its contact sheets, and read it back.

    .venv/bin/python bench/expression_set.py --make     # faces.csv (labels kept) + sheet_*.png

Faces come from the sample clip (every 4th frame) and photos, found by the mediapipe backend with a mesh and
at least 48 px. Each face is identified by its source file, frame and box centre, so any backend can find it
again. Labels (neutral, smile, mouth_open, eyes_closed) are given by eye from the sheets in the ``label``
column; ``split`` is ``tune`` or ``test``: the clip in alternating 40-frame blocks, the photos alternately,
so neighbouring frames of one face never sit on both sides. Only ``tune`` faces may be used to set ranges.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "datasets" / "samples"
OUT = ROOT / "datasets" / "expressions"
COLUMNS = ["id", "source", "frame", "cx", "cy", "size", "label", "split"]
TILE = 176


def frames(every: int = 4, only: set[tuple[str, int]] | None = None):
    """(source name, frame, rgb) of the clip every Nth frame, then each photo; only the (name, frame) given."""
    from curate.core.media import iter_video, list_sources, load_image

    sources, _ = list_sources([SAMPLES])
    for src in sources:
        name = src.path.name
        if only is not None and not any(n == name for n, _ in only):
            continue
        if src.is_video:
            for index, rgb in iter_video(src.path, every=every):
                if only is None or (name, index) in only:
                    yield name, index, rgb
        else:
            yield name, 0, load_image(src.path)


def read_set(path: Path = OUT / "faces.csv") -> list[dict]:
    """Rows of the labelled set with numbers parsed."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["frame"] = int(r["frame"])
        for k in ("cx", "cy", "size"):
            r[k] = float(r[k])
    return rows


def split_of(source: str, frame: int, photo_index: int) -> str:
    """tune/test: 40-frame blocks of a video alternate; photos alternate."""
    if frame or source.endswith(".mp4"):
        return "tune" if (frame // 40) % 2 == 0 else "test"
    return "tune" if photo_index % 2 == 0 else "test"


def make() -> None:
    from curate.core.align import alignment_matrix, warp_face
    from curate.analysis.registry import create_analyzer

    analyzer = create_analyzer("mediapipe")
    rows, tiles, photos = [], [], 0
    for source, frame, rgb in frames():
        if not source.endswith(".mp4"):
            photos += 1
        for face in analyzer.analyze(rgb):
            size = float(np.ptp(face.landmarks, axis=0).max())
            if face.mesh is None or size < 48:
                continue
            centre = face.landmarks.mean(axis=0)
            rows.append({"id": len(rows), "source": source, "frame": frame, "cx": round(float(centre[0]), 1),
                         "cy": round(float(centre[1]), 1), "size": round(size, 1), "label": "",
                         "split": split_of(source, frame, photos)})
            crop = warp_face(rgb, alignment_matrix(face.landmarks, TILE, 0.7), TILE)
            crop = np.ascontiguousarray(crop[:, :, ::-1])
            cv2.putText(crop, str(rows[-1]["id"]), (3, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2)
            tiles.append(crop)
    OUT.mkdir(parents=True, exist_ok=True)
    old = read_set() if (OUT / "faces.csv").is_file() else []
    for row in rows:  # labels given by hand survive a rebuild: same source, frame and (nearly) the same centre
        for prev in old:
            if (prev["source"], prev["frame"]) == (row["source"], row["frame"]) and \
                    np.hypot(prev["cx"] - row["cx"], prev["cy"] - row["cy"]) < 0.1 * row["size"]:
                row["label"] = prev["label"]
    with open(OUT / "faces.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    per_sheet, cols = 24, 6
    for s in range(0, len(tiles), per_sheet):
        chunk = tiles[s:s + per_sheet]
        chunk += [np.zeros_like(tiles[0])] * (-len(chunk) % cols)
        sheet = np.vstack([np.hstack(chunk[i:i + cols]) for i in range(0, len(chunk), cols)])
        cv2.imwrite(str(OUT / f"sheet_{s // per_sheet + 1}.png"), sheet)
    print(f"{len(rows)} faces -> {OUT}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--make", action="store_true", help="write faces.csv and the contact sheets")
    if parser.parse_args().make:
        make()
