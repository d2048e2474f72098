"""Bring faceswap and DeepFaceLab face-sets into a dataset: landmarks from their files, crops and measures ours.

A malformed or unsafe file is refused with one clear error before the dataset changes; in a folder of
DeepFaceLab JPGs each bad file gets one line and the others are imported.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from curate.core.media import MediaError, iter_video, load_image, report_error
from curate.dataset.subsets import check_subset
from curate.interop.common import ImportSummary, KnownFace, add_known_faces, safe_child
from curate.interop.dfl.codec import parse_dfl_meta, read_dfl_meta
from curate.interop.faceswap.codec import face_extras, parse_video_key, read_alignments
from curate.interop.safe_pickle import FormatError

CHUNK = 32
_FACE_INDEX = re.compile(r"_(\d+)$")


def _flush(batch: list[KnownFace], summary: ImportSummary, add: Callable[[list[KnownFace]], ImportSummary]) -> None:
    if batch:
        done = add(batch)
        summary.added += done.added
        summary.present += done.present
        batch.clear()


def _faceswap_frames(frames: dict[str, list], root: Path, summary: ImportSummary) -> Iterator[tuple[Path, int, bool, np.ndarray, list]]:
    """(source, frame, is_video, rgb, faces) for every frame of the alignments found under root."""
    videos: dict[Path, dict[int, list]] = {}
    for key in sorted(frames):
        faces = frames[key]
        if not faces:
            continue
        try:
            path = safe_child(root, key) if root.is_dir() else None
            if path is not None and path.is_file():
                yield path, 0, False, load_image(path), faces
                continue
            parsed = parse_video_key(key)
            if parsed is None:
                raise FormatError("frame image not found")
            video = root if root.is_file() else safe_child(root, parsed[0])
            if not video.is_file() or video.name != parsed[0]:
                raise FormatError(f"neither the frame image nor the video {parsed[0]} is in {root}")
            videos.setdefault(video, {})[parsed[1]] = faces
        except (FormatError, MediaError) as exc:
            summary.skipped.append((key, str(exc)))
            report_error(key, str(exc))
    for video, wanted in videos.items():
        last = max(wanted)
        try:
            for index, rgb in iter_video(video):
                if index in wanted:
                    yield video, index, True, rgb, wanted.pop(index)
                if index >= last:
                    break
        except MediaError as exc:  # a damaged or short video: its remaining frames are reported below
            summary.skipped.append((str(video), str(exc)))
            report_error(video, str(exc))
        for index in wanted:
            summary.skipped.append((f"{video.name} frame {index}", "frame not in the video"))
            report_error(f"{video} frame {index}", "frame not in the video")


def check_video_matches(alignments: Path, keys: list[str], frames: Path) -> None:
    """FormatError (one line) when ``frames`` is a video and the alignments' frame keys name other videos only."""
    if not Path(frames).is_file():
        return
    named = {parsed[0] for parsed in map(parse_video_key, keys) if parsed is not None}
    if named and Path(frames).name not in named:
        raise FormatError(f"{Path(alignments).name} describes frames of {', '.join(sorted(named))}, not of "
                          f"{Path(frames).name}: give --frames the video it was made from")


def import_faceswap(dataset: str, subset: str, alignments: Path, frames: Path, backend: str = "dlib",
                    size: int = 256, coverage: float = 0.75) -> ImportSummary:
    """Import a faceswap alignments file; frames is the folder of frame images or the video it was made from."""
    check_subset(subset)
    data, _ = read_alignments(Path(alignments))  # the whole file is checked before anything is added
    check_video_matches(alignments, [k for k, faces in data.items() if faces], Path(frames))
    summary, batch = ImportSummary(), []
    add = lambda b: add_known_faces(dataset, subset, b, backend, size, coverage, tool="faceswap")
    for source, frame, is_video, rgb, faces in tqdm(_faceswap_frames(data, Path(frames), summary), desc="import", unit="frame"):
        for index, face in enumerate(faces):
            pts = face["landmarks_xy"]
            batch.append(KnownFace(source, frame, index, rgb, pts, pts, (face["x"], face["y"], face["w"], face["h"]),
                                   (rgb.shape[1], rgb.shape[0]), is_video, extra=face_extras(face, face.get("video_meta")),
                                   masks=face["masks"]))
        if len(batch) >= CHUNK:
            _flush(batch, summary, add)
    _flush(batch, summary, add)
    return summary


def load_image_size(path: Path) -> int:
    """Width of an image file (the side of a DFL aligned face), read from its header."""
    from PIL import Image

    with Image.open(path) as im:
        return int(im.size[0])


def import_dfl(dataset: str, subset: str, folder: Path, frames: Path | None = None, backend: str = "dlib",
               size: int = 256, coverage: float = 0.75) -> ImportSummary:
    """Import a folder of DeepFaceLab aligned JPGs (from their source frames when frames is given)."""
    check_subset(subset)
    if frames is not None and not Path(frames).is_dir():
        raise FormatError(f"--frames {frames} is not a folder: give the folder of source frames DeepFaceLab "
                          "extracted the faces from (its aligned JPGs name them, e.g. 00001.png)")
    summary, batch = ImportSummary(), []
    no_source = 0
    add = lambda b: add_known_faces(dataset, subset, b, backend, size, coverage, tool="dfl")
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    for path in tqdm(files, desc="import", unit="face"):
        try:
            meta = read_dfl_meta(path.read_bytes())
            if meta is None:
                raise FormatError("no DeepFaceLab metadata (APP15) in this JPG")
            info = parse_dfl_meta(meta, path.name)
            m = _FACE_INDEX.search(path.stem)
            index = int(m.group(1)) if m else 0
            source_file = safe_child(Path(frames), info["source_filename"]) if frames and info["source_filename"] else None
            if source_file is not None and source_file.is_file():
                rgb = load_image(source_file)
                face = KnownFace(source_file, 0, index, rgb, info["source_landmarks"], info["source_landmarks"],
                                 info["bbox"], (rgb.shape[1], rgb.shape[0]))
                to_face = info["image_to_face_mat"]  # the frame -> DFL's aligned face
                if to_face is None:
                    raise FormatError("no usable image_to_face_mat and degenerate landmarks")
            else:  # the aligned JPG itself, through its own landmarks; the source frame's size is not known
                no_source += frames is not None
                rgb = load_image(path)
                face = KnownFace(path, 0, 0, rgb, info["landmarks"], info["source_landmarks"], info["bbox"], None)
                to_face = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
            face_side = load_image_size(path)
            face.masks = {name: (mask, to_face * (mask.shape[1] / face_side)) for name, mask in info["masks"].items()}
            back = cv2.invertAffineTransform(to_face)
            face.polygons = [(label, pts @ back[:, :2].T + back[:, 2]) for label, pts in info["polys"]]
            face.extra = {"dfl_face_type": info["face_type"], "dfl_source_filename": info["source_filename"]}
            if info["pitch_yaw_roll"] is not None:
                face.extra["dfl_pitch_yaw_roll"] = info["pitch_yaw_roll"]
            batch.append(face)
        except (FormatError, MediaError, OSError) as exc:
            summary.skipped.append((str(path), str(exc)))
            report_error(path, str(exc))
            continue
        if len(batch) >= CHUNK:
            _flush(batch, summary, add)
    _flush(batch, summary, add)
    if no_source:
        summary.notes.append(f"{no_source} faces: their source frame is not in {frames}; imported from the aligned "
                             "JPG itself (the source frame's size is not known)")
    return summary
