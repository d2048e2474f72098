"""Frame input and output for conversion, all streamed (one frame in memory at a time).

Input: videos through OpenCV, frame by frame; a frame that fails to decode is reported (``None``) and the
stream goes on. Output: an H.264 MP4 through the ffmpeg binary that imageio-ffmpeg ships (same size and fps,
the source's audio stream copied in afterwards), or numbered PNG frames written atomically so a re-run skips
the ones already there.
"""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from curate.core.media import MediaError, open_video

MAX_BAD_RUN = 25


def read_frames(path: Path, expected: int) -> Iterator[tuple[int, np.ndarray | None]]:
    """(index, RGB) for every frame of a video; (index, None) for a frame that fails to decode between good ones."""
    cap = open_video(path)
    try:
        index, pending = 0, []
        while True:
            ok, bgr = cap.read()
            if ok:
                for bad in pending:
                    yield bad, None
                pending = []
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            else:  # past the end, or a broken frame: try the next one a few times before calling it the end
                if index >= expected - 1 or len(pending) >= MAX_BAD_RUN:
                    break
                pending.append(index)  # the decoder moves on by itself; seeking would land on a key frame
            index += 1
        if index == len(pending):
            raise MediaError("cannot decode any frame (corrupt or unsupported video)")
    finally:
        cap.release()


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped in the imageio-ffmpeg wheel (or FACESET_FFMPEG / IMAGEIO_FFMPEG_EXE)."""
    import imageio_ffmpeg

    return os.environ.get("FACESET_FFMPEG") or imageio_ffmpeg.get_ffmpeg_exe()


class VideoWriter:
    """H.264 video of RGB frames at a fixed fps; ``close()`` muxes in the audio of ``audio_from`` if it has any."""

    def __init__(self, path: Path, width: int, height: int, fps: float, audio_from: Path | None = None, crf: int = 18):
        import imageio_ffmpeg

        self.path, self.audio_from = Path(path), audio_from
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.video_only = self.path.with_name(f".{self.path.stem}.video{self.path.suffix}")
        pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        self._gen = imageio_ffmpeg.write_frames(
            str(self.video_only), (width, height), fps=fps, codec="libx264", quality=None, pix_fmt_out=pix_fmt,
            macro_block_size=1, output_params=["-crf", str(crf), "-preset", "veryfast"], ffmpeg_log_level="error")
        self._gen.send(None)

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB uint8 frame."""
        self._gen.send(np.ascontiguousarray(rgb[..., :3]))

    def close(self) -> None:
        """Finish the file under its final name, with the source's audio stream when it has one."""
        self._gen.close()
        if self.audio_from is None:
            os.replace(self.video_only, self.path)
            return
        tmp = self.path.with_name(f".{self.path.stem}.mux{self.path.suffix}")
        base = [ffmpeg_exe(), "-y", "-v", "error", "-i", str(self.video_only), "-i", str(self.audio_from),
                "-map", "0:v:0", "-map", "1:a?", "-c:v", "copy"]
        for audio in (["-c:a", "copy"], ["-c:a", "aac"]):  # copy when the container takes it, else re-encode
            done = subprocess.run([*base, *audio, "-shortest", str(tmp)], capture_output=True, check=False)
            if done.returncode == 0:
                break
        else:
            os.replace(self.video_only, self.path)
            raise MediaError(f"could not copy the audio of {self.audio_from}: {done.stderr.decode(errors='replace').strip()[-200:]}")
        os.replace(tmp, self.path)
        self.video_only.unlink(missing_ok=True)

    def abort(self) -> None:
        """Stop without leaving a half-written file under the final name."""
        try:
            self._gen.close()
        finally:
            self.video_only.unlink(missing_ok=True)


def frame_png(folder: Path, stem: str, index: int) -> Path:
    """Name of one output frame: <folder>/<stem>_<index:06d>.png (faceswap's frame naming)."""
    return folder / f"{stem}_{index:06d}.png"
