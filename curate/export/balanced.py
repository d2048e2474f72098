"""Balanced export: N faces stratified over pose (yaw x pitch) and expression bins, optionally following the
other subset's coverage; written as a plain folder, faceswap alignments + PNGs, or DeepFaceLab aligned JPGs,
with a manifest (JSON + CSV) and a PNG of the exported distribution. Deterministic for a seed. Which faces:
:mod:`curate.export.select`.

An export folder is what ``train/`` reads: the crops plus ``manifest.json`` (landmarks in crop pixels, pose
bins, quality).
"""
from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from curate.core.align import between_affine, transform_points
from curate.core.media import SourceFrames, encode_image
from curate.dataset.subsets import check_subset
from curate.export import FORMATS
from curate.export.select import balanced_selection, face_quality, pose_bins
from curate.ops.gaps import DEFAULT_PITCH_EDGES, DEFAULT_YAW_EDGES, bin_labels

MANIFEST = "manifest.json"


@dataclass
class ExportResult:
    """Where an export went and what it holds."""

    out: Path
    count: int
    manifest: Path
    plot: Path
    format: str
    left_out: dict[str, int] = field(default_factory=dict)  # faces not exported, by reason


MASK_KEY = "__mask"  # the exported mask's segmentation, whatever field it came from
FACESWAP_MASK = "custom"  # faceswap's name for a mask made outside its maskers (its manual mask tool's)
_FIELDS = ["id", "face_key", "filepath", "source", "source_type", "frame", "face_index", "bbox", "frame_size",
           "landmarks", "source_landmarks", "align_matrix", "yaw", "pitch", "roll", "blur", "expression",
           "identity_ok", "dup_keep", "landmarks_ok", "backend"]


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def plot_distribution(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Heatmap PNG of the exported faces over yaw x pitch bins, with expression counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ny, npi = len(DEFAULT_YAW_EDGES) + 1, len(DEFAULT_PITCH_EDGES) + 1
    grid = np.zeros((npi, ny))
    for r in rows:
        grid[np.digitize(r["pitch"], DEFAULT_PITCH_EDGES), np.digitize(r["yaw"], DEFAULT_YAW_EDGES)] += 1
    exprs: dict[str, int] = {}
    for r in rows:
        exprs[r["expression"]] = exprs.get(r["expression"], 0) + 1
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4), dpi=100, gridspec_kw={"width_ratios": [3, 1]})
    im = ax.imshow(grid[::-1], cmap="viridis")
    ax.set_xticks(range(ny), bin_labels(DEFAULT_YAW_EDGES), rotation=45, fontsize=7)
    ax.set_yticks(range(npi), bin_labels(DEFAULT_PITCH_EDGES)[::-1], fontsize=7)
    ax.set_xlabel("yaw (°)")
    ax.set_ylabel("pitch (°)")
    for (i, j), v in np.ndenumerate(grid[::-1]):
        if v:
            ax.text(j, i, int(v), ha="center", va="center", color="w", fontsize=7)
    fig.colorbar(im, ax=ax)
    bx.barh(list(exprs), list(exprs.values()), color="tab:orange")
    bx.set_title("expression")
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def alignment_info(rows: list[dict[str, Any]], backends: list[str | None], fmt: str = "folder",
                   face_type: str = "full_face") -> dict[str, Any]:
    """How the exported crops were aligned (coverage from their landmarks, landmark backend), for conversion;
    a faceswap export is in faceswap's own geometry, which faceset's training does not read."""
    from collections import Counter

    from curate.core.align import median_coverage

    named = Counter(b for b in backends if b)
    info = {"coverage": median_coverage([r["landmarks"] for r in rows], [r["size"] for r in rows]) if rows else None,
            "backend": named.most_common(1)[0][0] if named else "dlib"}
    if fmt == "faceswap":
        info["geometry"] = "faceswap-head"
    elif fmt == "dfl":
        info["geometry"] = f"dfl-{face_type}"
    return info


def export_faces(
    name: str, subset: str, out: str | Path, n: int | None = None, match: str | None = None, fmt: str = "folder",
    size: int | None = None, seed: int = 0, by_expression: bool = True, view: str | None = None, progress: bool = True,
    overwrite: bool = False, face_type: str = "full_face", on_progress: Callable[[float, str], None] | None = None,
    mask: str | None = "auto", cluster: str | None = None, all_faces: bool = False,
) -> ExportResult:
    """Pick a balanced set of a subset's faces and write it with its manifest and distribution PNG.

    ``cluster``: a Dask scheduler's address (else $DASK_SCHEDULER_ADDRESS): the faces are rendered by its
    workers in parts (never splitting a source frame), ``out`` and the sources on a path they share.
    Non-face detections and faces of unsure or other identity are left out unless ``all_faces``.
    """
    from curate.extract.cluster import cluster_address, connect
    check_subset(subset)
    check_subset(match, optional=True)
    if fmt == "dfl":  # before any file is written
        from curate.interop.dfl.geometry import check_face_type

        check_face_type(face_type)
    from fiftyone import ViewField as F

    from curate.dataset.store import load_dataset

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (use {', '.join(FORMATS)})")
    ds = load_dataset(name)
    base = ds.load_saved_view(view) if view else ds
    pool = base.match(F("subset") == subset)
    if not len(pool):
        raise ValueError(f"subset {subset} of {name!r} has no faces")
    left: dict[str, int] = {}
    if not all_faces:
        from curate.ops.identity import left_out_line, usable_faces

        pool, left = usable_faces(pool)
        if not len(pool):
            raise ValueError(f"subset {subset} of {name!r} has no usable faces ({left_out_line(left)}; --all-faces "
                             "exports them anyway)")
    from curate.masks import export_mask_field

    mask_field = export_mask_field(ds, mask)
    fields = [f for f in _FIELDS if f == "id" or ds.has_sample_field(f) or f == "expression"]
    fields += [mask_field] if mask_field else []
    values = dict(zip(fields, pool.values([f if f != "expression" else "expression.label" for f in fields])))
    if mask_field:
        values[MASK_KEY] = values.pop(mask_field)
        fields[-1] = MASK_KEY
    exprs = [e or "unknown" for e in values["expression"]]
    names = sorted(set(exprs))
    bins = pose_bins(values["yaw"], values["pitch"], np.array(exprs) if by_expression else None, expressions=names)
    target = None
    if match:
        other = ds.match(F("subset") == match)
        if not len(other):
            raise ValueError(f"--match {match}: subset {match} of {name!r} has no faces")
        oy, op, oe = other.values(["yaw", "pitch", "expression.label"])
        target = pose_bins(oy, op, np.array([e or "unknown" for e in oe]) if by_expression else None, expressions=names)
    quality = face_quality(values["blur"], values.get("identity_ok"), values.get("dup_keep"), values.get("landmarks_ok"))
    chosen = balanced_selection(bins, quality, n, seed, target)

    address = cluster_address(cluster)
    client = connect(address) if address else None  # an unreachable scheduler: one error before any file
    out = Path(out)
    prepare_folder(out, overwrite)
    rows, fsa_frames = [], {}
    order = chosen.tolist()
    if fmt in ("faceswap", "dfl"):  # the tools' crops are cut from the source frames: read each source once, in order
        order.sort(key=lambda k: (str(values["source"][k]), int(values["frame"][k])))
    faces = [{f: values[f][k] for f in fields} for k in order]
    bar = tqdm(total=len(faces), desc=f"export {subset}", unit="face", disable=not progress, leave=False, dynamic_ncols=True)
    try:
        if client is None:
            frames, warned = (SourceFrames() if fmt in ("faceswap", "dfl") else None), set()
            step = max(len(order) // 100, 1)
            for done, v in enumerate(faces):
                rows.append(_write_face(out, fmt, v, size, fsa_frames, frames, face_type))
                if frames is not None and frames.unreadable - warned:
                    bar.clear()
                    warn_unreadable(frames.unreadable, warned)
                bar.update(1)
                if on_progress is not None and done % step == 0:
                    on_progress(done / len(order), f"exported {done} of {len(order)} faces")
        else:
            try:
                rows, fsa_frames = _render_on_cluster(client, out, fmt, faces, size, face_type, bar)
            finally:
                client.close()
    finally:
        bar.close()
    if fmt == "faceswap":
        from curate.interop.faceswap.codec import write_alignments

        write_alignments(out / "alignments.fsa", fsa_frames)
    manifest = {"dataset": name, "subset": subset, "format": fmt, "match": match, "seed": seed, "n": len(rows),
                "mask": mask_field,
                "alignment": alignment_info(rows, [values.get("backend", [None] * len(exprs))[k] for k in chosen], fmt,
                                            face_type),
                "yaw_edges": list(DEFAULT_YAW_EDGES), "pitch_edges": list(DEFAULT_PITCH_EDGES), "faces": rows}
    _atomic_bytes(out / MANIFEST, json.dumps(manifest, indent=1).encode())
    with open(out / "manifest.csv.tmp", "w", newline="") as fh:
        cols = ["sample_id", "file", "source", "frame", "yaw", "pitch", "roll", "expression", "blur", "pose_bin"]
        writer = csv.DictWriter(fh, cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(out / "manifest.csv.tmp", out / "manifest.csv")
    plot = plot_distribution(rows, out / "distribution.png", f"{name} {subset}: {len(rows)} faces exported" + (f" (matching {match})" if match else ""))
    return ExportResult(out, len(rows), out / MANIFEST, plot, fmt, left)


RENDER_PART = 500  # faces per export task on a cluster


@dataclass(frozen=True)
class RenderPart:
    """Faces one export task writes (consecutive in the export's order; a source frame is never split)."""

    out: str
    fmt: str
    faces: tuple[dict[str, Any], ...]
    size: int | None
    face_type: str

    @property
    def label(self) -> str:
        """How an error names this task."""
        return f"export of {self.faces[0]['source']} ({len(self.faces)} faces)"


def render_parts(out: Path, fmt: str, faces: list[dict[str, Any]], size: int | None, face_type: str,
                 per_part: int | None = None) -> list[RenderPart]:
    """The export's faces cut into parts of about ``per_part``, at a change of source (or of frame, in a long
    source): a frame's faces stay together (faceswap numbers them within the frame)."""
    per_part = per_part or RENDER_PART
    parts, current = [], []
    for v in faces:
        if current and len(current) >= per_part and (v["source"], v["frame"]) != (current[-1]["source"], current[-1]["frame"]):
            parts.append(current)
            current = []
        current.append(v)
    if current:
        parts.append(current)
    return [RenderPart(str(out), fmt, tuple(p), size, face_type) for p in parts]


def render_part(part: RenderPart) -> tuple[list[dict[str, Any]], dict[str, list], list[str]]:
    """Write a part's faces (cluster task): their manifest rows, faceswap frames, and unreadable sources."""
    fsa: dict[str, list] = {}
    frames = SourceFrames(seek=True) if part.fmt in ("faceswap", "dfl") else None
    rows = [_write_face(Path(part.out), part.fmt, v, part.size, fsa, frames, part.face_type) for v in part.faces]
    return rows, fsa, sorted(frames.unreadable) if frames else []


def _render_on_cluster(client: Any, out: Path, fmt: str, faces: list[dict[str, Any]], size: int | None,
                       face_type: str, bar: Any) -> tuple[list[dict[str, Any]], dict[str, list]]:
    """Render the parts on the cluster's workers; rows in the export's order, faceswap frames merged."""
    from curate.extract.cluster import run_tasks

    parts = render_parts(out, fmt, faces, size, face_type)
    done: dict[int, tuple] = {}
    index = {id(p): k for k, p in enumerate(parts)}

    def finished(part: RenderPart, result: tuple) -> None:
        done[index[id(part)]] = result
        bar.update(len(part.faces))

    failed = run_tasks(client, parts, finished, fn=render_part)
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(parts)} export parts failed on the cluster: {': '.join(failed[0])}")
    rows, fsa, warned = [], {}, set()
    for k in range(len(parts)):
        part_rows, part_fsa, unreadable = done[k]
        rows += part_rows
        fsa.update(part_fsa)
        warn_unreadable(unreadable, warned)
    return rows, fsa


def warn_unreadable(sources: Iterable[str], warned: set[str]) -> None:
    """One warning line for each source frame that could not be read and was not warned about yet."""
    for source in sorted(set(sources) - warned):
        print(f"faceset: warning: {source} is not readable: the exported crops are cut from faceset's crops "
              "instead, with black where they end", file=sys.stderr)
        warned.add(source)


EXPORT_FILES = (MANIFEST, "manifest.csv", "distribution.png", "alignments.fsa")


def prepare_folder(out: Path, overwrite: bool = False) -> None:
    """Make ``out`` ready for an export: new or empty; a previous export only with ``overwrite`` (its files are
    removed first, so no stale face is left for a trainer to pick up); anything else is refused."""
    if not out.exists():
        out.mkdir(parents=True)
        return
    if not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder")
    entries = list(out.iterdir())
    if not entries:
        return
    try:
        previous = {f["file"] for f in json.loads((out / MANIFEST).read_text())["faces"]}
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{out} is not empty and holds no faceset export: choose a new or empty folder") from None
    foreign = sorted(p.name for p in entries if p.name not in previous | set(EXPORT_FILES) and not p.name.startswith("."))
    if foreign:
        raise ValueError(f"{out} holds files that are not from its faceset export ({', '.join(foreign[:3])}"
                         f"{', ...' if len(foreign) > 3 else ''}): choose a new or empty folder")
    if not overwrite:
        raise ValueError(f"{out} holds a previous export of {len(previous)} faces: pass --overwrite to replace it")
    for p in entries:
        if p.is_file():
            p.unlink()


def _tool_crop(v: dict[str, Any], extracted: np.ndarray, fmt: str, size: int | None, frames: SourceFrames,
               face_type: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The face faceswap or DeepFaceLab would cut (crop, its 68 landmarks, frame -> crop matrix), from the source
    frame; from faceset's own crop when the source is gone (black where that crop ends; the export warns)."""
    from curate.interop.dfl import geometry as dfl_geometry
    from curate.interop.faceswap import geometry as faceswap_geometry

    geometry = faceswap_geometry if fmt == "faceswap" else dfl_geometry
    side = size or geometry.DEFAULT_SIZE
    marks = np.asarray(v["source_landmarks"], dtype=np.float64)
    if fmt == "faceswap":
        matrix = faceswap_geometry.aligned_matrix(marks, side)
    else:
        matrix = dfl_geometry.transform_mat(marks, side, face_type)
    frame = frames.get(str(v["source"]), int(v["frame"]), v.get("source_type") == "video")
    if frame is None:  # (frames.unreadable has the source: the export warns once per source)
        crop = geometry.cut_face(extracted, between_affine(v["align_matrix"], matrix), side)
    else:
        crop = geometry.cut_face(frame, matrix, side)
    return crop, transform_points(marks, matrix), matrix


def _write_face(out: Path, fmt: str, v: dict[str, Any], size: int | None, fsa_frames: dict[str, list],
                frames: SourceFrames | None = None, face_type: str = "full_face") -> dict[str, Any]:
    """Write one face in the chosen format; returns its manifest row."""
    from curate.core.media import load_image
    from curate.masks import segmentation_array

    crop = load_image(Path(v["filepath"]))
    face_mask = segmentation_array(v.get(MASK_KEY))  # in faceset's crop, any stored size
    if face_mask is not None:
        face_mask = cv2.resize(face_mask, crop.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    if fmt in ("faceswap", "dfl"):  # the tools' own geometry, cut from the source frame
        crop, pts, matrix = _tool_crop(v, crop, fmt, size, frames or SourceFrames(), face_type)
        if face_mask is not None:  # faceset crop -> the tool's crop
            to_tool = between_affine(v["align_matrix"], matrix)
            face_mask = cv2.warpAffine(face_mask, to_tool, crop.shape[1::-1], flags=cv2.INTER_LINEAR)
    else:
        pts = np.asarray(v["landmarks"].keypoints[0].points, dtype=np.float64) * crop.shape[1]
        if size and size != crop.shape[1]:
            scale = size / crop.shape[1]
            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            pts = pts * scale
            if face_mask is not None:
                face_mask = cv2.resize(face_mask, (size, size), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    source = Path(v["source"])
    is_video = v.get("source_type") == "video"
    stem = f"{source.stem}_{v['frame']:06d}_{v['face_index']}" if is_video else f"{source.stem}_{v['face_index']}"
    if fmt == "faceswap":
        from curate.interop.faceswap.codec import face_entry, frame_key, png_with_meta

        key = frame_key(source, v["frame"], is_video)
        faces = fsa_frames.setdefault(key, [])
        entry = face_entry(v["bbox"], np.asarray(v["source_landmarks"]), crop)
        if face_mask is not None:  # as faceswap stores masks: 128 px, zlib, with its frame -> mask matrix
            from curate.interop.faceswap.codec import mask_entry

            entry["mask"][FACESWAP_MASK] = mask_entry(face_mask, matrix, crop.shape[0])
        file = out / f"{Path(key).stem}_{len(faces)}.png"
        faces.append(entry)
        meta = {"alignments": {k: entry[k] for k in ("x", "y", "w", "h", "landmarks_xy", "mask", "identity")},
                "source": {"alignments_version": 2.4, "original_filename": file.name, "face_index": len(faces) - 1,
                           "source_filename": key, "source_is_video": is_video, "source_frame_dims": tuple(v["frame_size"][::-1]) if v.get("frame_size") else None}}
        _atomic_bytes(file, png_with_meta(encode_image(crop, ".png"), meta))
    elif fmt == "dfl":
        from curate.interop.dfl.codec import dfl_meta, write_dfl_meta

        file = out / f"{stem}.jpg"
        meta = dfl_meta(pts, source.name if not is_video else f"{source.stem}_{v['frame'] + 1:06d}.png",
                        v["bbox"], np.asarray(v["source_landmarks"]), matrix, face_type)
        if face_mask is not None:  # DFL keeps its XSeg mask as a PNG of at most 256 px in the metadata
            small = cv2.resize(face_mask, (min(256, crop.shape[1]),) * 2, interpolation=cv2.INTER_AREA)
            meta["xseg_mask"] = cv2.imencode(".png", small)[1]  # one channel, cv2.imencode's buffer, as DFL keeps it
        _atomic_bytes(file, write_dfl_meta(encode_image(crop, ".jpg"), meta))
    elif face_mask is not None:  # the mask as the PNG's alpha: what faceset's training reads
        file = out / f"{stem}.png"
        _atomic_bytes(file, encode_image(np.dstack([crop, face_mask]), ".png"))
    else:
        file = out / f"{stem}.jpg"
        _atomic_bytes(file, encode_image(crop, ".jpg"))
    return {
        "sample_id": v["id"], "face_key": v["face_key"], "file": file.name, "source": str(source), "frame": v["frame"],
        "face_index": v["face_index"], "yaw": v["yaw"], "pitch": v["pitch"], "roll": v["roll"],
        "expression": v["expression"] or "unknown", "blur": v["blur"],
        "pose_bin": int(pose_bins([v["yaw"]], [v["pitch"]])[0]),
        "landmarks": np.round(pts, 3).tolist(), "size": int(crop.shape[1]),
    }
