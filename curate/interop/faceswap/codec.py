"""faceswap alignments: the .fsa file (zlib-compressed pickle) and the face PNGs' 'faceswap' iTXt header.

Layouts read: v2 ``{"__meta__": {"version": ...}, "__data__": {frame: {"faces": [...], "video_meta": {}}}}``
and the pre-2.0 ``{frame: [face, ...]}``. A face holds ``x, y, w, h`` and ``landmarks_xy`` (68x2, frame px),
optionally ``mask``, ``identity`` and ``thumb``. Video frames are keyed ``<stem>_<frame:06d><ext>`` counting
from 1.
"""
from __future__ import annotations

import os
import pickle
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from curate.interop.safe_pickle import FormatError, plain, safe_loads

ALIGNMENTS_VERSION = 2.4
_VIDEO_KEY = re.compile(r"^(?P<stem>.+)_(?P<frame>\d{6})(?P<ext>\.\w+)$")


def _check_face(face: Any, where: str) -> dict[str, Any]:
    if not isinstance(face, dict) or not {"x", "y", "w", "h", "landmarks_xy"} <= face.keys():
        raise FormatError(f"{where}: a face needs x, y, w, h and landmarks_xy")
    pts = np.asarray(face["landmarks_xy"], dtype=np.float64)
    if pts.shape != (68, 2) or not np.isfinite(pts).all():
        raise FormatError(f"{where}: landmarks_xy must be 68 finite (x, y) points, got shape {pts.shape}")
    return {**face, "landmarks_xy": pts, "masks": decode_masks(face, where)}


def decode_masks(face: dict[str, Any], where: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A face's stored masks: name -> (uint8 mask at stored_size, frame->mask 2x3 affine)."""
    out = {}
    for name, md in (face.get("mask") or {}).items():
        try:
            size = int(md["stored_size"])
            mask = np.frombuffer(zlib.decompress(md["mask"]), dtype=np.uint8).reshape(size, size)
            affine = np.asarray(md["affine_matrix"], dtype=np.float64).reshape(2, 3)
        except (KeyError, TypeError, ValueError, zlib.error) as exc:
            raise FormatError(f"{where}: mask {name!r} is unreadable ({type(exc).__name__}: {exc})") from None
        if not isinstance(name, str) or not name.strip() or len(name) > 64 or not name.isprintable():
            raise FormatError(f"{where}: mask name {name!r} is not a plain name")
        out[name] = (mask.copy(), affine)  # faceswap names: components, unet-dfl, bisenet-fp_face, custom_head...
    return out


def mask_field(name: str, taken: set[str] = frozenset()) -> str:
    """The sample field of a faceswap mask: ``mask_`` + its name with every other character than a letter, digit
    or underscore as ``_`` (``unet-dfl`` -> ``mask_unet_dfl``), made unique against ``taken``."""
    base = "mask_" + re.sub(r"[^0-9A-Za-z_]", "_", name)
    field, n = base, 2
    while field in taken:
        field, n = f"{base}_{n}", n + 1
    return field


def face_extras(face: dict[str, Any], video_meta: dict[str, Any] | None) -> dict[str, Any]:
    """What faceswap stored beside the landmarks that faceset keeps on the sample: identity vectors per plugin
    (``faceswap_identity``) and the frame's ``video_meta`` (pts_time, keyframe)."""
    extra: dict[str, Any] = {}
    identity = face.get("identity") or {}
    if isinstance(identity, dict) and identity:
        extra["faceswap_identity"] = {str(k): np.asarray(v, dtype=np.float32).ravel().tolist() for k, v in identity.items()}
    if isinstance(video_meta, dict) and video_meta:
        extra["faceswap_video_meta"] = {str(k): (v.item() if hasattr(v, "item") else v) for k, v in video_meta.items()}
    return extra


def read_alignments(path: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Frames -> faces and the meta of an .fsa file, both layouts; FormatError/UnsafePickleError when not one."""
    try:
        raw = zlib.decompress(Path(path).read_bytes())
    except zlib.error as exc:
        raise FormatError(f"not a faceswap alignments file (zlib: {exc})") from None
    data = safe_loads(raw)
    if not isinstance(data, dict):
        raise FormatError(f"not a faceswap alignments file (top level is {type(data).__name__})")
    if "__data__" in data:
        meta, frames = data.get("__meta__") or {}, data["__data__"]
        if not isinstance(frames, dict):
            raise FormatError("__data__ is not a dict")
        out = {}
        for name, entry in frames.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("faces"), list):
                raise FormatError(f"frame {name!r}: expected {{'faces': [...]}}")
            out[str(name)] = [{**_check_face(f, f"frame {name!r}"), "video_meta": entry.get("video_meta")}
                              for f in entry["faces"]]
        return out, dict(meta)
    out = {}
    for name, faces in data.items():
        if not isinstance(faces, list):
            raise FormatError(f"frame {name!r}: expected a list of faces")
        out[str(name)] = [_check_face(f, f"frame {name!r}") for f in faces]
    return out, {"version": 1.0}


def write_alignments(path: Path, frames: dict[str, list[dict[str, Any]]]) -> Path:
    """Write a v2 .fsa (zlib pickle of plain data + numpy arrays) atomically."""
    internal = ("masks", "video_meta")  # what read_alignments decodes for faceset, not faceswap's face keys
    data = {"__meta__": {"version": ALIGNMENTS_VERSION},
            "__data__": {name: {"faces": [{k: v for k, v in f.items() if k not in internal} for f in faces],
                                "video_meta": {}} for name, faces in frames.items()}}
    tmp = Path(path).with_name(f".{Path(path).name}.tmp")
    tmp.write_bytes(zlib.compress(pickle.dumps(data, protocol=4)))
    os.replace(tmp, path)
    return Path(path)


def frame_key(source: Path, frame: int, is_video: bool) -> str:
    """faceswap's frame name: the image file name, or <stem>_<frame+1:06d><ext> for a video frame."""
    return f"{source.stem}_{frame + 1:06d}{source.suffix}" if is_video else source.name


def parse_video_key(name: str) -> tuple[str, int] | None:
    """(video file name, 0-based frame) of a video frame key, or None."""
    m = _VIDEO_KEY.match(name)
    return (m["stem"] + m["ext"], int(m["frame"]) - 1) if m else None


def face_entry(bbox: list[float], landmarks: np.ndarray, thumb: np.ndarray | None = None) -> dict[str, Any]:
    """One face of an alignments file, typed as current faceswap writes it (``DetectedFace.to_alignment``:
    landmarks and the JPEG thumbnail as lists, so faceswap does not rewrite the file on load)."""
    x, y, w, h = (int(round(v)) for v in bbox)
    entry: dict[str, Any] = {"x": x, "y": y, "w": w, "h": h,
                             "landmarks_xy": np.asarray(landmarks, dtype=np.float32).tolist(), "mask": {}, "identity": {}}
    if thumb is not None:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(cv2.resize(thumb, (96, 96), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR))
        entry["thumb"] = buf.tolist() if ok else None
    return entry


def mask_entry(mask: np.ndarray, frame_to_crop: np.ndarray, crop_size: int, stored_size: int = 128,
               centering: str = "head") -> dict[str, Any]:
    """A mask as faceswap stores one: uint8 at ``stored_size`` zlib-compressed, the frame -> stored-mask matrix,
    the interpolator and the centering of the crop it was made in."""
    small = cv2.resize(np.asarray(mask, dtype=np.uint8), (stored_size, stored_size), interpolation=cv2.INTER_AREA)
    affine = np.asarray(frame_to_crop, dtype=np.float64).reshape(2, 3) * (stored_size / float(crop_size))
    return {"mask": zlib.compress(small.tobytes()), "affine_matrix": affine.tolist(), "interpolator": int(cv2.INTER_AREA),
            "stored_size": int(stored_size), "stored_centering": centering}


def png_with_meta(png: bytes, meta: dict[str, Any]) -> bytes:
    """PNG bytes with faceswap's 'faceswap' iTXt header (a Python-literal dict) before the first IDAT."""
    text = str(plain(meta)).encode("utf-8")
    body = b"faceswap" + b"\0\0\0\0\0" + text
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body) & 0xFFFFFFFF)
    at = png.find(b"IDAT") - 4
    if at < 8:
        raise FormatError("not a PNG")
    return png[:at] + chunk + png[at:]
