"""What the importers share: safe paths inside the user's folders and adding known faces as samples."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from curate.analysis.frame import AnalysisSettings, describe_known_face, face_key
from curate.analysis.registry import create_analyzer
from curate.core.align import between_affine, transform_points
from curate.core.media import write_image
from curate.dataset.store import fo
from curate.dataset.subsets import check_subset
from curate.interop.faceswap.codec import mask_field
from curate.interop.safe_pickle import FormatError


def safe_child(root: Path, name: str) -> Path:
    """root/name, refusing absolute names and any '..' that would leave root (no path traversal)."""
    text = str(name)
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if not text or PureWindowsPath(text).is_absolute() or text.startswith(("/", "\\")) or ".." in parts:
        raise FormatError(f"path {name!r} would leave {root}")
    path = (root / Path(*parts)).resolve()
    if not path.is_relative_to(root.resolve()):
        raise FormatError(f"path {name!r} would leave {root}")
    return path


@dataclass
class KnownFace:
    """A face to import: the image its landmarks refer to, and where it came from."""

    source: Path
    frame: int
    index: int
    rgb: np.ndarray
    landmarks: np.ndarray
    source_landmarks: np.ndarray
    bbox: tuple[float, float, float, float] | None
    frame_size: tuple[int, int] | None  # None: the source frame is not at hand (a DFL JPG without --frames)
    is_video: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    masks: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # name -> (mask, frame->mask 2x3)
    polygons: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (label, points in frame pixels)


def mask_to_crop(mask: np.ndarray, frame_to_mask: np.ndarray, frame_to_crop: np.ndarray, size: int) -> np.ndarray:
    """A mask stored in its own aligned space, resampled into our crop (uint8 0/255)."""
    import cv2

    m = between_affine(frame_to_mask, frame_to_crop)
    return cv2.warpAffine(mask, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)


@dataclass
class ImportSummary:
    """Faces added, already present, and skipped files with reasons."""

    added: int = 0
    present: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the user should know about how faces were read

    @property
    def ok(self) -> bool:
        """False when nothing could be imported (every file refused): the command then exits 1."""
        return self.added + self.present > 0

    def lines(self) -> list[str]:
        """Human summary."""
        return [f"faces added: {self.added}, already in the dataset: {self.present}, files skipped: {len(self.skipped)}",
                *self.notes]


def add_known_faces(dataset: str, subset: str, faces: list[KnownFace], backend: str = "dlib", size: int = 256,
                    coverage: float = 0.75, tool: str = "import") -> ImportSummary:
    """Crop, measure and add faces with known landmarks as samples (existing face keys are left alone)."""
    check_subset(subset)
    from curate.dataset import store
    ds = store.open_dataset(dataset)
    settings = AnalysisSettings(backend=backend, size=size, coverage=coverage, crops_dir=str(store.media_dir(ds)))
    keys = [face_key(f.source, f.frame, f.index) for f in faces]
    present = store.existing_keys(ds, keys)
    summary = ImportSummary(present=len(present))
    todo = [(k, f) for k, f in zip(keys, faces) if k not in present]
    if not todo:
        return summary
    embedder = create_analyzer(backend).embedder
    samples = []
    for key, f in todo:
        record, crop = describe_known_face(f.rgb, f.landmarks, embedder, settings, f.bbox)
        path = Path(settings.crops_dir) / f"{key}.jpg"
        write_image(crop, path)
        record.update(face_key=key, face_index=f.index, filepath=str(path),
                      frame_size=list(f.frame_size) if f.frame_size else None,
                      source_landmarks=np.round(f.source_landmarks, 3).tolist())
        if f.bbox is not None:
            record["bbox"] = [float(v) for v in f.bbox]
        sample = store.to_sample(record, str(f.source), f.frame, f.is_video, subset, backend)
        sample["imported_from"] = tool
        for name, value in f.extra.items():
            sample[name] = value
        names: dict[str, str] = {}
        for name, (mask, frame_to_mask) in f.masks.items():
            crop_mask = mask_to_crop(mask, frame_to_mask, np.asarray(record["align_matrix"]), settings.size)
            field = mask_field(name, set(names))
            names[field] = name
            sample[field] = fo.Segmentation(mask=(crop_mask > 127).astype(np.uint8))
        if names:
            sample["mask_names"] = names  # field -> the tool's own mask name (unet-dfl, bisenet-fp_face, ...)
        if f.polygons:  # XSeg include/exclude polygons, drawn by the App on the crop
            matrix = np.asarray(record["align_matrix"])
            sample["xseg_polygons"] = fo.Polylines(polylines=[
                fo.Polyline(label=label, points=[(transform_points(pts, matrix) / settings.size).round(4).tolist()],
                            closed=True, filled=True)
                for label, pts in f.polygons])
        samples.append(sample)
    ds.add_samples(samples, progress=False)
    summary.added = len(samples)
    return summary
