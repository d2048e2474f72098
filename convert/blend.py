"""Masks and paste-back: the swapped crop goes back into the frame through the inverse alignment.

Only the face's region of interest (the crop's footprint in the frame plus the feather margin) is warped and
blended, so the cost does not grow with frame size. Pixels where the final mask is 0 are left bit-identical.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from curate.core.align import invert_affine, transform_points
from curate.core.quality import hull_mask

MASK_PARTS = ("hull", "model", "learned", "hands")
BLENDS = ("alpha", "seamless")
MIN_ALPHA = 1.0 / 255.0


def parse_mask(spec: str) -> tuple[str, ...]:
    """Mask parts of a --mask value: 'hull', 'model' (the swap model's mask), 'learned' (the face-set's mask
    network, `faceset mask train`), 'hands', joined by ',' or '+' ('both' = hull,model); 'hands' alone means
    hull,hands (hands are cut out of a face mask, they are not one)."""
    parts: list[str] = []
    for raw in str(spec).replace("+", ",").split(","):
        name = raw.strip().lower()
        expanded = ["hull", "model"] if name == "both" else [name]
        for part in expanded:
            if part not in MASK_PARTS:
                raise ValueError(f"unknown mask {raw.strip()!r} in {spec!r} (use hull, model, learned, hands or "
                                 f"both, joined by commas: e.g. learned,hands)")
            if part not in parts:
                parts.append(part)
    if not parts:
        raise ValueError("empty --mask (use hull, model, learned, hands or both)")
    if parts == ["hands"]:
        parts.insert(0, "hull")
    return tuple(parts)


def crop_mask(kind: str, landmarks: np.ndarray, size: int, model_mask: np.ndarray | None = None,
              occluders: np.ndarray | None = None, learned: np.ndarray | None = None) -> np.ndarray:
    """(S, S) float mask in the aligned crop: the product of the named parts that are available (landmark hull,
    the swap model's mask, the face-set's learned mask; the hull when none is), with the occluders (hands:
    uint8 or float, non-zero = occluded) cut out when the spec names 'hands'."""
    parts = parse_mask(kind)
    available = {"hull": None, "model": model_mask, "learned": learned}
    mask = None
    for part in ("hull", "model", "learned"):
        if part not in parts:
            continue
        layer = hull_mask(landmarks, size) if part == "hull" else available[part]
        if layer is None:
            continue
        layer = np.clip(layer.astype(np.float32), 0, 1)
        if part == "learned":  # a probability: decided per pixel, the feathering makes the soft edge
            layer = (layer > 0.5).astype(np.float32)
        mask = layer if mask is None else mask * layer
    if mask is None:
        mask = hull_mask(landmarks, size)
    if "hands" in parts and occluders is not None:
        occ = occluders.astype(np.float32)
        mask = mask * (1.0 - np.clip(occ / (255.0 if occ.max() > 1.0 else 1.0), 0.0, 1.0))
    return mask


def auto_mask_px(face_size: float, erode: int | None, blur: int | None) -> tuple[int, int]:
    """Erosion and feather radius in frame pixels; None means scaled to the face (2% and 6% of its size)."""
    return (round(0.02 * face_size) if erode is None else erode,
            max(1, round(0.06 * face_size)) if blur is None else blur)


def roi_of(matrix: np.ndarray, crop_size: int, margin: int, frame_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the crop's footprint in the frame, grown by ``margin`` and clipped to the frame."""
    corners = np.array([[0, 0], [crop_size, 0], [crop_size, crop_size], [0, crop_size]], np.float64)
    pts = transform_points(corners, invert_affine(matrix))
    h, w = frame_shape[:2]
    x0, y0 = np.floor(pts.min(0)).astype(int) - margin
    x1, y1 = np.ceil(pts.max(0)).astype(int) + margin
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def feather(mask: np.ndarray, erode: int, blur: int) -> np.ndarray:
    """Erode (negative: dilate) by ``erode`` px, then Gaussian-feather over ``blur`` px; tiny values become 0."""
    out = mask.astype(np.float32)
    if erode:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(erode) + 1,) * 2)
        out = cv2.erode(out, kernel) if erode > 0 else cv2.dilate(out, kernel)
    if blur > 0:
        out = cv2.GaussianBlur(out, (2 * blur + 1,) * 2, blur / 2.0)
    out = np.clip(out, 0.0, 1.0)
    out[out < MIN_ALPHA] = 0
    return out


@dataclass
class Pasted:
    """Where a face went: its ROI (x0, y0, x1, y1) and the final blend mask over that ROI."""

    roi: tuple[int, int, int, int]
    mask: np.ndarray


def paste_face(frame: np.ndarray, face: np.ndarray, mask: np.ndarray, matrix: np.ndarray, erode: int = 0,
               blur: int = 0, blend: str = "alpha", keep: np.ndarray | None = None) -> Pasted | None:
    """Blend a swapped crop (float RGB [0, 1]) into ``frame`` (uint8 RGB, modified in place); None if off-frame.

    ``keep``: a frame-sized uint8 mask of occluders (hands) whose pixels stay as they are, after feathering,
    so the face's soft edge never bleeds over them."""
    if blend not in BLENDS:
        raise ValueError(f"unknown blend {blend!r} (use {', '.join(BLENDS)})")
    size = face.shape[0]
    x0, y0, x1, y1 = roi_of(matrix, size, abs(erode) + 2 * blur + 2, frame.shape)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    inv = invert_affine(matrix)
    inv[:, 2] -= (x0, y0)
    dsize = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(face.astype(np.float32), inv, dsize, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    m = cv2.warpAffine(mask.astype(np.float32), inv, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    m = feather(m, erode, blur)
    if keep is not None:
        m = m * (1.0 - keep[y0:y1, x0:x1].astype(np.float32) / 255.0)
        m[m < MIN_ALPHA] = 0.0
    if not m.any():
        return None
    roi = frame[y0:y1, x0:x1]
    src = np.clip(warped * 255.0, 0, 255)
    if blend == "seamless":
        src = _seamless(src, roi, m).astype(np.float32)
    a = m[..., None]
    out = roi.astype(np.float32) * (1.0 - a) + src * a
    roi[:] = np.where(a > 0, np.round(out), roi).astype(np.uint8)
    return Pasted((x0, y0, x1, y1), m)


def _seamless(src: np.ndarray, dst: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Poisson (gradient-domain) clone of src into dst where mask > 0.5; pads so the mask never touches a border."""
    binary = (mask > 0.5).astype(np.uint8) * 255
    if binary.sum() == 0:
        return src
    pad = 4
    src_p = cv2.copyMakeBorder(np.round(src).astype(np.uint8), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    dst_p = cv2.copyMakeBorder(dst, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    mask_p = cv2.copyMakeBorder(binary, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    x, y, w, h = cv2.boundingRect(mask_p)
    cloned = cv2.seamlessClone(src_p, dst_p, mask_p, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    return cloned[pad:-pad, pad:-pad]


def alpha_layer(shape: tuple[int, ...], pasted: list[Pasted]) -> np.ndarray:
    """uint8 (H, W) alpha of all pasted faces (their blend masks), for RGBA output."""
    alpha = np.zeros(shape[:2], np.float32)
    for p in pasted:
        x0, y0, x1, y1 = p.roi
        alpha[y0:y1, x0:x1] = np.maximum(alpha[y0:y1, x0:x1], p.mask)
    return np.round(alpha * 255).astype(np.uint8)
