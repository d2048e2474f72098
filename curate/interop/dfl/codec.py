"""DeepFaceLab aligned JPGs: a pickled dict in the JPEG APP15 segment.

Keys written: face_type, landmarks (68 pts in the aligned image), source_filename, source_rect (l, t, r, b),
source_landmarks (68 pts in the source frame), image_to_face_mat (2x3), eyebrows_expand_mod. Values are
plain lists/tuples (DeepFaceLab converts them with np.array), so the pickle names no global at all.
Reading goes through the restricted loader, and also accepts numpy arrays and the older keys.
"""
from __future__ import annotations

import pickle
import struct
from typing import Any

import numpy as np

from curate.interop.safe_pickle import FormatError, safe_loads

APP15 = 0xEF
_NO_LENGTH = {0xD8, 0xD9, 0x01, *range(0xD0, 0xD8)}


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each header segment up to the start of scan."""
    if not data.startswith(b"\xff\xd8"):
        raise FormatError("not a JPEG")
    out, pos = [], 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise FormatError(f"broken JPEG marker at byte {pos}")
        marker = data[pos + 1]
        if marker in _NO_LENGTH:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        out.append((marker, pos, pos + 2 + length))
        if marker == 0xDA:
            break
        pos += 2 + length
    return out


def read_dfl_meta(data: bytes) -> dict[str, Any] | None:
    """The DeepFaceLab dict of aligned-JPEG bytes (restricted unpickling), or None when it has none."""
    for marker, start, end in _segments(data):
        if marker == APP15:
            meta = safe_loads(data[start + 4:end])
            if not isinstance(meta, dict):
                raise FormatError("DeepFaceLab metadata is not a dict")
            return meta
    return None


def write_dfl_meta(data: bytes, meta: dict[str, Any]) -> bytes:
    """JPEG bytes with its DeepFaceLab APP15 segment set to meta (after any APP0/APP1)."""
    payload = pickle.dumps(meta, protocol=4)
    if len(payload) > 65533:
        raise FormatError("DeepFaceLab metadata larger than one JPEG segment")
    segments = [s for s in _segments(data) if s[0] != APP15]
    kept = b"".join(data[s:e] for m, s, e in segments if m in (0xE0, 0xE1))
    between = b"".join(data[s:e] for m, s, e in segments if m not in (0xE0, 0xE1, 0xDA))
    sos = next((s for m, s, e in segments if m == 0xDA), None)
    if sos is None:
        raise FormatError("JPEG without image data")
    segment = b"\xff\xef" + struct.pack(">H", len(payload) + 2) + payload
    return b"\xff\xd8" + kept + segment + between + data[sos:]


def dfl_meta(landmarks: np.ndarray, source_filename: str, source_rect: list[float],
             source_landmarks: np.ndarray, image_to_face_mat: np.ndarray, face_type: str = "full_face") -> dict[str, Any]:
    """The metadata dict of one aligned face, as plain data."""
    l, t, w, h = source_rect
    return {
        "face_type": face_type,
        "landmarks": np.asarray(landmarks, dtype=float).round(3).tolist(),
        "eyebrows_expand_mod": 1.0,
        "source_filename": source_filename,
        "source_rect": (int(round(l)), int(round(t)), int(round(l + w)), int(round(t + h))),
        "source_landmarks": np.asarray(source_landmarks, dtype=float).round(3).tolist(),
        "image_to_face_mat": np.asarray(image_to_face_mat, dtype=float).tolist(),
    }


def parse_dfl_meta(meta: dict[str, Any], where: str) -> dict[str, Any]:
    """Validated landmarks (aligned and source), source rect (x, y, w, h) and file name of a DFL dict."""
    try:
        aligned = np.asarray(meta["landmarks"], dtype=np.float64)
        source = np.asarray(meta.get("source_landmarks", aligned), dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{where}: no usable landmarks ({exc})") from None
    if aligned.shape != (68, 2) or source.shape != (68, 2) or not (np.isfinite(aligned).all() and np.isfinite(source).all()):
        raise FormatError(f"{where}: landmarks must be 68 finite points")
    rect = meta.get("source_rect")
    bbox = None
    if rect is not None and len(rect) == 4:
        l, t, r, b = (float(v) for v in rect)
        bbox = (l, t, r - l, b - t)
    matrix = meta.get("image_to_face_mat")
    try:
        matrix = np.asarray(matrix, dtype=np.float64).reshape(2, 3) if matrix is not None else None
    except (TypeError, ValueError):
        matrix = None
    if matrix is None or not np.isfinite(matrix).all() or abs(np.linalg.det(matrix[:, :2])) < 1e-9:
        from curate.core.align import umeyama

        # older files: the frame -> face transform from the two landmark sets (when they span anything)
        matrix = umeyama(source, aligned) if np.ptp(source, axis=0).min() > 0 and np.ptp(aligned, axis=0).min() > 0 else None
    pyr = meta.get("pitch_yaw_roll")
    return {"landmarks": aligned, "source_landmarks": source, "bbox": bbox, "image_to_face_mat": matrix,
            "source_filename": str(meta.get("source_filename") or ""), "face_type": str(meta.get("face_type", "")),
            "polys": seg_polys(meta, where), "masks": seg_masks(meta, where),
            "pitch_yaw_roll": [float(v) for v in pyr] if isinstance(pyr, (list, tuple)) and len(pyr) == 3 else None}


def seg_polys(meta: dict[str, Any], where: str) -> list[tuple[str, np.ndarray]]:
    """XSeg polygons (include/exclude, points in the aligned face) of ``seg_ie_polys`` (DFL 2.0: {'polys': [{'type',
    'pts'}]}) or the older ``ie_polys`` / list layout [(type, pts)]."""
    data = meta.get("seg_ie_polys", meta.get("ie_polys"))
    if data is None:
        return []
    try:
        items = data["polys"] if isinstance(data, dict) else list(data)
        out = []
        for item in items:
            kind, pts = (item["type"], item["pts"]) if isinstance(item, dict) else item
            pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
            if len(pts) >= 3 and np.isfinite(pts).all():
                out.append(("include" if int(kind) == 1 else "exclude", pts))
        return out
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{where}: XSeg polygons are unreadable ({type(exc).__name__}: {exc})") from None


def seg_masks(meta: dict[str, Any], where: str) -> dict[str, np.ndarray]:
    """Stored masks of the aligned face as uint8 images: ``xseg_mask`` (DFL 2.0) and the older ``fanseg_mask``,
    each an encoded PNG/JPG buffer (older files: a float array)."""
    import cv2

    out = {}
    for key, name in (("xseg_mask", "xseg"), ("fanseg_mask", "fanseg")):
        data = meta.get(key)
        if data is None:
            continue
        arr = np.frombuffer(bytes(data), np.uint8) if isinstance(data, (bytes, bytearray)) else np.asarray(data)
        if arr.dtype == np.uint8 and arr.ndim <= 2 and (arr.ndim == 1 or 1 in arr.shape):
            img = cv2.imdecode(arr.reshape(-1), cv2.IMREAD_GRAYSCALE)
        elif arr.ndim >= 2 and np.issubdtype(arr.dtype, np.floating):
            img = np.clip(arr.reshape(arr.shape[0], arr.shape[1]) * 255, 0, 255).astype(np.uint8)
        else:
            img = None
        if img is None:
            raise FormatError(f"{where}: {key} is not a mask image")
        out[name] = img
    return out
