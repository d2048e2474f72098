"""Training data from export folders: crops + manifest landmarks, augmented, balanced over pose bins.

Every batch is a pure function of (seed, iteration, rank): workers can prefetch in any order and a resumed
run sees exactly the batches an uninterrupted run would have seen.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from curate.core.landmarks import LEFT_EYE, MOUTH, RIGHT_EYE, fill_parts
from curate.core.quality import hull_mask


class FaceSetError(ValueError):
    """An export folder that cannot be trained on."""


@dataclass
class FaceSet:
    """One identity's faces at training size: images (N, S, S, 3) uint8, landmarks (N, 68, 2), bins (N,)."""

    images: np.ndarray
    landmarks: np.ndarray
    bins: np.ndarray
    files: list[str]
    alignment: dict = field(default_factory=dict)
    masks: np.ndarray | None = None  # (N, S, S) float in [0, 1] from the export's PNG alpha; None: landmark hulls

    @property
    def weights(self) -> np.ndarray:
        """Sampling probability per face: every pose bin equally likely."""
        _, inverse, counts = np.unique(self.bins, return_inverse=True, return_counts=True)
        w = 1.0 / counts[inverse]
        return w / w.sum()


def load_faceset(folder: Path, size: int) -> FaceSet:
    """Read an export folder (manifest.json + crops), resized to the model's size."""
    folder = Path(folder)
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise FaceSetError(f"{folder}: no manifest.json (make it with `faceset export`)")
    try:
        data = json.loads(manifest.read_text())
        faces = data["faces"]
    except (ValueError, KeyError) as exc:
        raise FaceSetError(f"{manifest}: not a faceset manifest ({exc})") from None
    geometry = (data.get("alignment") or {}).get("geometry", "faceset")
    if geometry != "faceset":
        raise FaceSetError(f"{folder}: its crops are in {geometry} geometry (for that tool); export with "
                           "--format folder to train faceset")
    images, marks, bins, files, masks = [], [], [], [], []
    for face in faces:
        raw = cv2.imread(str(folder / Path(face["file"]).name), cv2.IMREAD_UNCHANGED)
        if raw is None or raw.ndim != 3 or raw.shape[2] not in (3, 4):
            raise FaceSetError(f"{folder / face['file']}: unreadable image")
        bgr = raw[..., :3]
        scale = size / bgr.shape[1]
        images.append(cv2.cvtColor(cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
        masks.append(cv2.resize(raw[..., 3], (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
                     if raw.shape[2] == 4 else None)
        marks.append(np.asarray(face["landmarks"], dtype=np.float32) * scale)
        bins.append(int(face.get("pose_bin", 0)))
        files.append(face["file"])
    if not images:
        raise FaceSetError(f"{folder}: the manifest lists no faces")
    alignment = dict(data.get("alignment") or {})
    if not alignment.get("coverage"):  # exports from before the field: recover it from the landmarks
        from curate.core.align import median_coverage

        alignment["coverage"] = median_coverage(marks, [size] * len(marks))
    alignment.setdefault("backend", "dlib")
    stored = None
    if any(m is not None for m in masks):  # faces without a stored mask fall back to their hull
        stored = np.stack([m if m is not None else hull_mask(p, size) for m, p in zip(masks, marks)])
    return FaceSet(np.stack(images), np.stack(marks), np.asarray(bins), files, alignment, stored)


def feature_weights(landmarks: np.ndarray, size: int, weight: float) -> np.ndarray:
    """(S, S) loss weights: 1 everywhere, ``weight`` on the eyes and mouth."""
    out = np.ones((size, size), np.float32)
    parts = cv2.dilate(fill_parts(landmarks, size, (RIGHT_EYE, LEFT_EYE, MOUTH)), np.ones((5, 5), np.uint8))
    out[parts > 0] = weight
    return out


def random_warp(image: np.ndarray, rng: np.random.Generator, strength: float = 0.035, grid: int = 5) -> np.ndarray:
    """Classic face-swap input warp: random offsets on a coarse grid, smoothly interpolated, remapped."""
    size = image.shape[0]
    offsets = rng.normal(0, strength * size, (2, grid, grid)).astype(np.float32)
    offsets[:, [0, -1], :] = 0
    offsets[:, :, [0, -1]] = 0
    dx = cv2.resize(offsets[0], (size, size), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(offsets[1], (size, size), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    return cv2.remap(image, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def random_affine(size: int, rng: np.random.Generator, rotate: float = 10, zoom: float = 0.05, shift: float = 0.05) -> np.ndarray:
    """2x3 matrix: small rotation, zoom and shift about the centre."""
    m = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-rotate, rotate), 1 + rng.uniform(-zoom, zoom))
    m[:, 2] += rng.uniform(-shift, shift, 2) * size
    return m


def colour_jitter(image: np.ndarray, rng: np.random.Generator, amount: float = 0.08) -> np.ndarray:
    """Random brightness, contrast and per-channel gain (same on input and target)."""
    img = image.astype(np.float32) / 255.0
    img = (img - 0.5) * (1 + rng.uniform(-amount, amount)) + 0.5 + rng.uniform(-amount, amount)
    img *= 1 + rng.uniform(-amount / 2, amount / 2, 3)
    return np.clip(img, 0, 1)


def augment(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, erode: int, feature_weight: float,
            warp: bool = True, mask: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """(warped input, target, mask, loss weights) of one face, all float32, images in [0, 1]; the loss mask is
    the stored mask when the face has one (occluders out of the loss), else the landmark hull."""
    size = image.shape[0]
    m = random_affine(size, rng)
    target = cv2.warpAffine(image, m, (size, size), borderMode=cv2.BORDER_REFLECT)
    pts = landmarks @ m[:, :2].T + m[:, 2]
    moved = None if mask is None else cv2.warpAffine(mask, m, (size, size), flags=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        target = target[:, ::-1]
        pts = np.c_[size - 1 - pts[:, 0], pts[:, 1]]
        moved = None if moved is None else moved[:, ::-1]
    target = colour_jitter(np.ascontiguousarray(target), rng)
    source = random_warp(target, rng) if warp else target
    if moved is None:
        loss_mask = hull_mask(pts, size, erode)
    else:
        loss_mask = (np.ascontiguousarray(moved) > 0.5).astype(np.uint8)
        if erode > 0:
            loss_mask = cv2.erode(loss_mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1,) * 2))
        loss_mask = loss_mask.astype(np.float32)
    return source, target, loss_mask, feature_weights(pts, size, feature_weight)


def _to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    arr = np.stack(images)
    return torch.from_numpy(arr.transpose(0, 3, 1, 2).copy() if arr.ndim == 4 else arr[:, None].copy())


class BatchSource(torch.utils.data.Dataset):
    """Map-style dataset whose item ``i`` is the whole training batch of iteration ``i`` for A and B."""

    def __init__(self, a: FaceSet, b: FaceSet, batch: int, seed: int, rank: int = 0, erode: int = 0,
                 feature_weight: float = 3.0):
        self.sets, self.batch, self.seed, self.rank = {"A": a, "B": b}, batch, seed, rank
        self.erode, self.feature_weight = erode, feature_weight

    def __len__(self) -> int:
        return 2**31 - 1

    def __getitem__(self, iteration: int) -> dict[str, dict[str, torch.Tensor]]:
        out = {}
        for k, (side, faces) in enumerate(self.sets.items()):
            rng = np.random.default_rng([self.seed, iteration, self.rank, k])
            idx = rng.choice(len(faces.images), self.batch, p=faces.weights)
            parts = [augment(faces.images[i], faces.landmarks[i], rng, self.erode, self.feature_weight,
                             mask=None if faces.masks is None else faces.masks[i]) for i in idx]
            warped, target, mask, weight = (list(p) for p in zip(*parts))
            out[side] = {"warped": _to_tensor(warped), "target": _to_tensor(target),
                         "mask": _to_tensor(mask), "weight": _to_tensor(weight)}
        return out


def preview_faces(faces: FaceSet, count: int = 4) -> torch.Tensor:
    """Fixed faces for previews (evenly spaced through the set), unaugmented, (N, 3, S, S) in [0, 1]."""
    idx = np.linspace(0, len(faces.images) - 1, min(count, len(faces.images))).round().astype(int)
    return torch.from_numpy(faces.images[idx].transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
