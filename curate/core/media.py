"""Reading sources robustly: folders, still images (EXIF, CMYK, 16-bit, alpha) and streamed video."""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jfif"}
VIDEO_EXTS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}


class MediaError(Exception):
    """A source file that cannot be read; str() is the reason."""


@dataclass(frozen=True)
class Source:
    """One input file and whether it is read as a video."""

    path: Path
    is_video: bool


def printable(path: Path | str) -> str:
    """A path as text that can be printed and stored: bytes that are not UTF-8 (say a Latin-1 file name)
    appear as \\xNN instead of breaking the database or the terminal."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def report_error(path: Path | str, reason: str) -> None:
    """One clear line on stderr: the file and why it was skipped (above any progress bar)."""
    import sys

    from tqdm import tqdm

    tqdm.write(f"faceset: skipped {printable(path)}: {reason}", file=sys.stderr)


def kind_of(path: Path) -> str | None:
    """'image', 'video' or None (not a media file) by file extension."""
    ext = path.suffix.lower()
    return "image" if ext in IMAGE_EXTS else "video" if ext in VIDEO_EXTS else None


def list_sources(paths: list[str | Path]) -> tuple[list[Source], list[tuple[Path, str]]]:
    """Expand files and folders (recursively, sorted) into sources, plus (path, reason) for bad ones."""
    found: list[Source] = []
    bad: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    child = Path(root) / name
                    kind = kind_of(child)
                    if kind:
                        found.append(Source(child.absolute(), kind == "video"))
        elif path.is_file():
            # an explicitly named file with an unknown extension is tried as an image
            found.append(Source(path.absolute(), kind_of(path) == "video"))
        else:
            bad.append((path, "no such file or folder"))
    return found, bad


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        top = 1.0 if float(np.nanmax(arr)) <= 1.0 else 255.0
        return np.clip(np.nan_to_num(arr) * (255.0 / top), 0, 255).astype(np.uint8)
    top = 65535.0 if arr.max() > 255 else 255.0
    return np.clip(arr.astype(np.float64) * (255.0 / top), 0, 255).astype(np.uint8)


def encode_image(image: np.ndarray, ext: str = ".jpg", quality: int = 95) -> bytes:
    """An RGB or RGBA image encoded in the format of ``ext`` (JPEG at ``quality``; PNG lossless)."""
    ext = ext.lower() or ".jpg"
    bgr = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if image.ndim == 3 and image.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg", ".jfif") else []  # PNG would warn
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:
        raise OSError(f"cannot encode an image as {ext}")
    return buf.tobytes()


def write_image(image: np.ndarray, path: Path, quality: int = 95) -> None:
    """Write an RGB or RGBA image atomically (temp file + rename; format from the suffix, JPEG quality)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = encode_image(image, path.suffix or ".jpg", quality)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def load_image(path: Path) -> np.ndarray:
    """RGB uint8 pixels, EXIF rotation applied; CMYK, 16-bit, palette, grey and alpha converted."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MediaError(f"cannot read file ({exc.strerror})") from exc
    if size == 0:
        raise MediaError("empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                rgb = _to_uint8(np.asarray(img))
            elif img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
                alpha = rgba[..., 3:4] / 255.0  # composite onto mid-grey so transparent parts hide nothing
                rgb = (rgba[..., :3] * alpha + 128.0 * (1 - alpha)).round().astype(np.uint8)
            else:
                rgb = np.asarray(img.convert("RGB"))
    except UnidentifiedImageError as exc:
        raise MediaError("not an image (unrecognised format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"corrupt or truncated image ({exc})") from exc
    except Image.DecompressionBombError as exc:
        raise MediaError(f"image too large ({exc})") from exc
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    if rgb.shape[0] < 8 or rgb.shape[1] < 8:
        raise MediaError(f"image too small ({rgb.shape[1]}x{rgb.shape[0]})")
    return np.ascontiguousarray(rgb[..., :3])


@dataclass(frozen=True)
class VideoInfo:
    """Frame count (as the container reports it), fps and frame size."""

    frames: int
    fps: float
    width: int
    height: int


def open_video(path: Path) -> cv2.VideoCapture:
    """An opened OpenCV capture, or MediaError saying why not."""
    if path.stat().st_size == 0:
        raise MediaError("empty file (0 bytes)")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise MediaError("cannot open video (unknown container or codec)")
    return cap


def probe_video(path: Path) -> VideoInfo:
    """Container metadata of a video, or MediaError."""
    cap = open_video(path)
    try:
        return VideoInfo(
            int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
            float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
    finally:
        cap.release()


def iter_video(path: Path, every: int = 1, start: int = 0, stop: int | None = None,
               seek: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """Stream (frame index, RGB) for every ``every``-th frame in [start, stop); one frame in memory.

    ``seek``: jump to a late ``start`` instead of decoding up to it (a frame range of a long film); only for
    videos whose frames are evenly timed (``evenly_timed``), where a frame number maps to one timestamp.
    """
    cap = open_video(path)
    try:
        index = start if seek and _seek(cap, start) else 0
        if not index and start:
            cap.release()  # the container could not land on the frame: read up to it from the beginning
            cap = open_video(path)
        decoded_any = False
        while stop is None or index < stop:
            wanted = index >= start and index % every == 0
            if wanted:
                ok, bgr = cap.read()
            else:
                ok, bgr = cap.grab(), None
            if not ok:
                break
            decoded_any = True
            if wanted:
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
        if not decoded_any and start == 0:
            raise MediaError("cannot decode any frame (corrupt or unsupported video)")
        promised = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if short_of(index, promised if stop is None else min(stop, promised)):
            raise MediaError(f"only {index} of {promised} frames decode (file cut short or damaged)")
    finally:
        cap.release()


SEEK_FROM = 250  # frames: below this reading up to the start is cheaper than a seek


def _seek(cap: cv2.VideoCapture, start: int) -> bool:
    """Seek the capture to frame ``start`` (far enough to be worth it); whether it landed exactly there."""
    if start < SEEK_FROM:
        return False
    return bool(cap.set(cv2.CAP_PROP_POS_FRAMES, start)) and int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == start


def evenly_timed(path: Path) -> bool:
    """Whether every video frame is one fixed interval after the previous (constant frame rate, no gaps), read
    from the packets' timestamps without decoding; seeking by frame number is exact only then."""
    import subprocess

    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy",
           "-f", "framecrc", "-"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    pts = sorted(int(line.split(",")[2]) for line in out.splitlines() if line and not line.startswith("#"))
    steps = np.diff(pts)
    return len(pts) > 1 and steps.min() > 0 and steps.max() - steps.min() <= 1


def short_of(decoded: int, promised: int) -> bool:
    """Whether a video decoded clearly fewer frames than its container promises (counts may be off by ~1%)."""
    return promised > 0 and decoded < promised - max(2, promised // 100)


def fingerprint(path: Path) -> str:
    """What identifies a file's content cheaply: size and modification time (a replaced file differs)."""
    st = Path(path).stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


class SourceFrames:
    """Source frames asked for in (source, frame) order: images loaded, one video decoded forward at a time
    (``seek``: to its first frame asked for, and across gaps of more than SEEK_FROM frames, when the video is
    evenly timed). ``unreadable``: the sources a frame could not be read from (gone, broken, too short)."""

    def __init__(self, seek: bool = False) -> None:
        self.path: Path | None = None
        self.frames: Any = None
        self.index, self.rgb = -1, None
        self.seek = seek
        self.unreadable: set[str] = set()
        self._timed: dict[Path, bool] = {}

    def _seekable(self, path: Path) -> bool:
        if path not in self._timed:
            self._timed[path] = self.seek and evenly_timed(path)
        return self._timed[path]

    def get(self, source: str, frame: int, is_video: bool) -> np.ndarray | None:
        """The RGB frame, or None when the source is gone, broken or too short (then it is in ``unreadable``)."""
        rgb = self._read(Path(source), frame, is_video)
        if rgb is None:
            self.unreadable.add(source)
        return rgb

    def _read(self, path: Path, frame: int, is_video: bool) -> np.ndarray | None:
        try:
            if not path.is_file():
                return None
            if not is_video:  # a photo with several faces is asked for once per face
                if self.path != path:
                    self.path, self.frames, self.index, self.rgb = path, None, 0, load_image(path)
                return self.rgb
            jump = self.path == path and frame - self.index > SEEK_FROM and self._seekable(path)
            if self.path != path or self.frames is None or frame < self.index or jump:
                start = frame if self._seekable(path) else 0
                self.path, self.frames, self.index = path, iter_video(path, 1, start, seek=start > 0), -1
            while self.index < frame:
                self.index, self.rgb = next(self.frames)
            return self.rgb if self.index == frame else None
        except (MediaError, OSError, StopIteration):
            self.path = None
            return None
