"""`faceset convert`: videos, images or folders through a trained model, frame by frame.

Per frame: find the faces (convert.faces), align each like the training crops (same backend, same coverage,
at the model's size), swap (convert.swapper), colour-transfer onto the original face (convert.color), build the
mask (landmark hull or the model's mask; eroded, feathered) and paste back through the inverse alignment
(convert.blend). Frames without faces to swap are written unchanged; frames that fail are reported and
passed through; PNG output skips frames already written, so an interrupted run resumes.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from convert.blend import (
    Pasted,
    alpha_layer,
    auto_mask_px,
    crop_mask,
    parse_mask,
    paste_face,
)
from convert.color import color_transfer
from convert.faces import FaceFinder, TargetFace, reference_embedding
from convert.frames import VideoWriter, frame_png, read_frames
from convert.preview import ContactSheet
from convert.settings import ConvertSettings
from convert.smoothing import face_scale
from convert.swapper import Swapper
from curate.core.align import DEFAULT_SIZE, alignment_matrix, transform_points, warp_face
from curate.core.media import MediaError, list_sources, load_image, probe_video, report_error, write_image

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".m4v"}



@dataclass
class ConvertSummary:
    """What a run did."""

    outputs: list[Path] = field(default_factory=list)
    frames: int = 0
    frames_skipped: int = 0
    faces_swapped: int = 0
    faces_left: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    previews: list[Path] = field(default_factory=list)
    only: bool = False  # --only was given

    def add(self, swapped: int, left: int) -> None:
        """Count one written frame or image."""
        self.frames += 1
        self.faces_swapped += swapped
        self.faces_left += left

    def lines(self) -> list[str]:
        """Human summary."""
        why = "not the --only identity, or no mesh" if self.only else "no mesh"
        out = [(f"frames written: {self.frames} ({self.frames_skipped} already done), faces swapped: "
                f"{self.faces_swapped}, faces left as they were ({why}): {self.faces_left}")]
        out += [f"output: {p}" for p in self.outputs]
        out += [f"before/after: {p}" for p in self.previews]
        out += [f"problem: {f}: {r}" for f, r in self.errors]
        return out


def aligned_crop(frame: np.ndarray, landmarks: np.ndarray, size: int, coverage: float) -> tuple[np.ndarray, np.ndarray]:
    """(frame-to-crop matrix, crop) made the way training crops are: warped at the extract size, area-resized."""
    work = max(size, DEFAULT_SIZE)
    matrix = alignment_matrix(landmarks, work, coverage)
    crop = warp_face(frame, matrix, work)
    if work != size:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return matrix * (size / work), crop


class FrameConverter:
    """Turns one RGB frame into its swapped version (and the blend alpha of the faces it pasted)."""

    def __init__(self, swapper: Swapper, finder: FaceFinder, settings: ConvertSettings):
        self.swapper, self.finder, self.settings = swapper, finder, settings
        self._hands = None  # MediaPipe's palm + hand models, loaded when --mask names hands
        self._masknet = None  # the face-set's mask network, loaded when --mask names learned

    def learned_masks(self, crops: np.ndarray, marks: list[np.ndarray]) -> list[np.ndarray | None]:
        """The face-set mask network's masks of the aligned crops (None each without --mask learned); ``marks``:
        each crop's 68 landmarks in crop px (a network trained on crops of another coverage gets them re-aligned)."""
        if "learned" not in parse_mask(self.settings.mask):
            return [None] * len(crops)
        from curate.masks.net import load_masknet, predict_masks

        if self._masknet is None:
            self._masknet = load_masknet(Path(self.settings.mask_model), self.settings.device)
        net, size = self._masknet
        return predict_masks(net, crops, size, marks)

    def occluders(self, frame: np.ndarray, faces: list[TargetFace]) -> list[np.ndarray | None]:
        """Per face, the hands in front of it as a frame-sized uint8 mask (None without --mask hands or hands)."""
        if "hands" not in parse_mask(self.settings.mask):
            return [None] * len(faces)
        from curate.analysis.hands import HandFinder, hand_mask, hands_near

        if self._hands is None:
            self._hands = HandFinder()
        hands = self._hands.find(frame)
        out = []
        for face in faces:
            lo, hi = face.landmarks.min(0), face.landmarks.max(0)
            near = hands_near(hands, (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])))
            out.append(hand_mask(frame.shape, near) if near else None)
        return out

    def swap_faces(self, frame: np.ndarray, faces: list[TargetFace]) -> list[Pasted]:
        """Swap the given faces into ``frame`` in place."""
        s, size = self.settings, self.swapper.size
        chosen = [f for f in faces if f.swap]
        if not chosen:
            return []
        original = frame.copy()  # faces are cut from the untouched frame even when they overlap
        matrices, crops = zip(*(aligned_crop(original, f.landmarks, size, self.swapper.coverage) for f in chosen))
        crops = np.stack(crops)
        rgb, model_masks = self.swapper(crops)
        occluded = self.occluders(original, chosen)
        in_crops = [transform_points(f.landmarks, m) for f, m in zip(chosen, matrices)]
        learned_masks = self.learned_masks(crops, in_crops)
        pasted = []
        for face, matrix, crop, out, own, occ, learned, marks in zip(chosen, matrices, crops, rgb, model_masks,
                                                                     occluded, learned_masks, in_crops):
            in_crop = None if occ is None else cv2.warpAffine(occ, matrix, (size, size), flags=cv2.INTER_LINEAR)
            mask = crop_mask(s.mask, marks, size, own, in_crop, learned)  # hands out of the colour statistics too
            out = color_transfer(s.color, out, crop.astype(np.float32) / 255.0, mask)
            erode, blur = auto_mask_px(face_scale(face.landmarks), s.mask_erode, s.mask_blur)
            done = paste_face(frame, out, mask, matrix, erode, blur, s.blend, keep=occ)
            if done is not None:
                pasted.append(done)
        return pasted

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, int, int]:
        """(output frame, RGBA alpha or None, faces swapped, faces left alone)."""
        faces = self.finder(rgb)
        frame = rgb.copy()
        pasted = self.swap_faces(frame, faces)
        alpha = alpha_layer(frame.shape, pasted) if self.settings.alpha else None
        return frame, alpha, len(pasted), sum(not f.swap for f in faces)


def _rgba(frame: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    return frame if alpha is None else np.dstack([frame, alpha])


def _unchanged(frame: np.ndarray, settings: ConvertSettings) -> tuple[np.ndarray, np.ndarray | None, int, int]:
    """A frame passed through as it is: nothing pasted (an empty alpha when RGBA is asked for)."""
    return frame, (np.zeros(frame.shape[:2], np.uint8) if settings.alpha else None), 0, 0


def _convert_or_keep(converter: FrameConverter, rgb: np.ndarray, path: Path, where: str,
                     problem: Callable[[Path | str, str], None]) -> tuple[np.ndarray, np.ndarray | None, int, int]:
    """The converted frame, or on a failure the frame unchanged and one error line."""
    try:
        return converter(rgb)
    except (cv2.error, ValueError, np.linalg.LinAlgError) as exc:
        problem(path, f"{where}conversion failed ({exc}); written unchanged")
        return _unchanged(rgb, converter.settings)


def output_paths(sources: list, out: Path, fmt: str) -> dict[Path, Path]:
    """Where each source goes: a video file, a folder of PNG frames, or one PNG per image."""
    one = sources[0] if len(sources) == 1 else None
    to_file = one is not None and (out.suffix.lower() == ".png" if not one.is_video else
                                   fmt == "mp4" and out.suffix.lower() in VIDEO_SUFFIXES)
    paths = {}
    for src in sources:
        if to_file:
            paths[src.path] = out
        elif src.is_video:
            paths[src.path] = out / (f"{src.path.stem}.mp4" if fmt == "mp4" else src.path.stem)
        else:
            paths[src.path] = out / f"{src.path.stem}.png"
    return paths


def convert(inputs: list[str | Path], model_dir: str | Path, out: str | Path, settings: ConvertSettings,
            progress: bool = True, on_error: Callable[[Path | str, str], None] = report_error) -> ConvertSummary:
    """Convert videos, images and folders of them with a trained model."""
    from curate.analysis.registry import create_analyzer
    from curate.ops.identity import identity_settings

    summary = ConvertSummary(only=bool(settings.only))

    def problem(path: Path | str, reason: str) -> None:
        summary.errors.append((str(path), reason))
        on_error(path, reason)

    swapper = Swapper(model_dir, settings.direction, settings.device)
    analyzer = create_analyzer(swapper.backend)
    reference = reference_embedding(analyzer, [Path(p) for p in settings.only], problem) if settings.only else None
    threshold = settings.threshold if settings.threshold is not None else identity_settings(swapper.backend).reference_threshold
    sources, bad = list_sources([str(p) for p in inputs])
    for path, reason in bad:
        problem(path, reason)
    out = Path(out)
    targets = output_paths(sources, out, settings.fmt)
    images = [s for s in sources if not s.is_video]
    for src in [s for s in sources if s.is_video]:
        finder = FaceFinder(analyzer, 1 if settings.every_frame_detect else settings.detect_every, reference, threshold, settings.smooth)
        try:
            convert_video(src.path, targets[src.path], FrameConverter(swapper, finder, settings), settings, summary, progress, problem)
        except MediaError as exc:
            problem(src.path, str(exc))
    if images:
        finder = FaceFinder(analyzer, 1, reference, threshold, smooth=0.0)  # unrelated stills: detect each, no smoothing
        converter = FrameConverter(swapper, finder, settings)
        for src in tqdm(images, desc="convert images", unit="img", disable=not progress):
            convert_image(src.path, targets[src.path], converter, summary, problem)
    return summary


def convert_image(path: Path, target: Path, converter: FrameConverter, summary: ConvertSummary,
                  problem: Callable[[Path | str, str], None]) -> None:
    """Convert one image into a PNG (skipped when the PNG exists; unreadable images copied as they are)."""
    if target.exists() and not converter.settings.overwrite:
        summary.frames_skipped += 1
        summary.outputs.append(target)
        return
    converter.finder.reset()
    try:
        rgb = load_image(path)
    except MediaError as exc:
        problem(path, f"{exc}; copied unchanged into {target.parent}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target.parent / path.name)
        return
    frame, alpha, swapped, left = _convert_or_keep(converter, rgb, path, "", problem)
    write_image(_rgba(frame, alpha), target)
    summary.add(swapped, left)
    summary.outputs.append(target)


def convert_video(path: Path, target: Path, converter: FrameConverter, settings: ConvertSettings,
                  summary: ConvertSummary, progress: bool, problem: Callable[[Path | str, str], None]) -> None:
    """Stream one video through the converter into an MP4 (audio copied) or PNG frames (resumable)."""
    info = probe_video(path)
    as_png = settings.fmt == "png"
    if not as_png and target.exists() and not settings.overwrite:
        summary.outputs.append(target)
        summary.frames_skipped += info.frames
        return
    writer = None if as_png else VideoWriter(target, info.width, info.height, info.fps or 25.0, audio_from=path)
    previous: np.ndarray | None = None
    sheet = ContactSheet(info.frames)
    bar = tqdm(total=info.frames, desc=f"convert {path.name}", unit="frame", disable=not progress)
    try:
        for index, rgb in read_frames(path, info.frames):
            bar.update(1)
            png = frame_png(target, path.stem, index) if as_png else None
            if png is not None and png.exists() and not settings.overwrite:
                summary.frames_skipped += 1
                converter.finder.reset()
                continue
            if rgb is None:
                problem(path, f"frame {index} unreadable; the previous frame is repeated in its place")
                blank = np.zeros((info.height, info.width, 3), np.uint8)
                frame, alpha, swapped, left = _unchanged(previous if previous is not None else blank, settings)
            else:
                frame, alpha, swapped, left = _convert_or_keep(converter, rgb, path, f"frame {index}: ", problem)
                sheet.offer(index, rgb, frame, swapped)
            if png is not None:
                write_image(_rgba(frame, alpha), png)
            else:
                writer.write(frame)
            previous = frame
            summary.add(swapped, left)
        if writer is not None:
            writer.close()
            writer = None
    finally:
        bar.close()
        if writer is not None:
            writer.abort()
    summary.outputs.append(target)
    preview = sheet.save(target.parent / f"{target.name if as_png else target.stem}.preview.png")
    if preview is not None:
        summary.previews.append(preview)
