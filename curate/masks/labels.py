"""Training labels of the face-set's mask network: a face's best real label (``mask_fixed`` a user corrected,
else an occlusion-aware mask imported from DeepFaceLab / faceswap, else its XSeg polygons), or its landmark hull
with the hands the hand detector finds on the crop cut out and the pixels its own skin does not explain left
unknown; which faces to train on."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from curate.analysis.hands import HandFinder, hand_mask, hands_near
from curate.core.align import median_coverage
from curate.core.landmarks import LEFT_BROW, LEFT_EYE, NOSE, OUTER_MOUTH, RIGHT_BROW, RIGHT_EYE, fill_parts
from curate.core.media import load_image
from curate.core.quality import hull_mask
from curate.dataset.store import load_dataset
from curate.dataset.subsets import check_subset
from curate.masks.fields import FIXED_FIELD, LEARNED_FIELD, polygons_mask, segmentation_array
from curate.masks.net import UNKNOWN, OccluderBank

OCCLUSION_AWARE = ("xseg", "fanseg", "bisenet", "vgg-obstructed", "unet-dfl")  # tool masks that see occluders


def _label_candidates(sample: dict[str, Any]) -> list[Any]:
    """A face's segmentations that can be real occlusion labels, best first: fixed, then occlusion-aware imports."""
    names = sample.get("mask_names") or {}
    tools = [sample.get(f) for f, tool in names.items() if any(k in str(tool).lower() for k in OCCLUSION_AWARE)]
    return [x for x in [sample.get(FIXED_FIELD), *tools] if x is not None]


def real_label(sample: dict[str, Any], size: int) -> np.ndarray | None:
    """The best real occlusion label of a face (uint8 at ``size``), or None."""
    for label in _label_candidates(sample):
        mask = segmentation_array(label)
        if mask is not None:
            return cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
    return polygons_mask(sample.get("xseg_polygons"), size)


def face_samples(name: str, subset: str | None, view: str | None = None) -> tuple[Any, Any]:
    """The dataset and the faces `faceset mask` works on: a saved view's (else all), of one subset (else both)."""
    from fiftyone import ViewField as F

    check_subset(subset, optional=True)
    ds = load_dataset(name)
    base = ds.load_saved_view(view) if view else ds
    return ds, (base.match(F("subset") == subset) if subset else base)


def label_fields(ds: Any) -> list[str]:
    """The fields a face's training label is read from (its masks, imported mask names, XSeg polygons)."""
    mask_fields = [f for f in ds.get_field_schema() if f.startswith("mask_") and f != LEARNED_FIELD]
    extra = [f for f in ("mask_names", "xseg_polygons") if ds.has_sample_field(f)]
    ok = ["landmarks_ok"] if ds.has_sample_field("landmarks_ok") else []
    return ["id", "filepath", "landmarks", *ok, *mask_fields, *extra]


SKIN_DISTANCE = 2.5  # robust z-distance (Lab) beyond which a hull pixel is not the face's own skin


def feature_regions(landmarks: np.ndarray, size: int) -> np.ndarray:
    """uint8 (S, S) mask of the brows, eyes, nose and mouth (68 landmarks in crop px), dilated: the parts of a
    face whose colour is not its skin's."""
    out = fill_parts(landmarks, size, (RIGHT_EYE, LEFT_EYE, OUTER_MOUTH, NOSE))
    pts = np.round(np.asarray(landmarks, dtype=np.float64)).astype(np.int32)
    for brow in (RIGHT_BROW, LEFT_BROW):
        cv2.polylines(out, [pts[brow]], False, 1, max(2, size // 40))
    return cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * (size // 25) + 1,) * 2))


def unexplained_pixels(crop: np.ndarray, landmarks: np.ndarray, hull: np.ndarray) -> np.ndarray:
    """bool (S, S): hull pixels outside the facial features whose colour is far from the face's own skin (robust
    Lab median and spread of the hull minus the features). A hull target calls them face; they are often an
    occluder (a microphone, a sleeve, a held object), so training does not learn them either way."""
    size = crop.shape[0]
    skin = (hull > 0) & (feature_regions(landmarks, size) == 0)
    if skin.sum() < 50:
        return np.zeros((size, size), bool)
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32)
    values = lab[skin]
    median = np.median(values, axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(values - median), axis=0), (4.0, 3.0, 3.0))
    z = np.abs(lab - median) / spread
    far = np.sqrt((z ** 2).sum(axis=2)) > SKIN_DISTANCE
    far = cv2.morphologyEx(far.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    return far & skin


def landmark_points(landmarks: Any) -> np.ndarray:
    """A face's 68 landmarks (its ``landmarks`` Keypoints) in [0, 1] crop coordinates."""
    return np.asarray(landmarks.keypoints[0].points, dtype=np.float64)


def hands_in_crops(rows: list[dict[str, Any]], crops: np.ndarray, picks: list[int]) -> dict[int, np.ndarray]:
    """Hand masks (uint8, crop px) of the picked faces that have hands in front or beside them: found in each
    face's source frame near its box and mapped by its alignment (the palm detector wants the whole hand and
    its wrist, which a face crop cuts off: on the sample clip 66 of 92 frames have hands found, 13 of 113
    crops), on the crop itself when the source is gone."""
    from curate.core.media import SourceFrames

    if not picks:  # (no models loaded for nothing)
        return {}
    finder, frames, out = HandFinder(), SourceFrames(seek=True), {}
    for i in sorted(picks, key=lambda k: (str(rows[k].get("source")), rows[k].get("frame") or 0)):
        row, shape = rows[i], crops[i].shape
        rgb = None
        if row.get("source") and row.get("align_matrix") is not None and row.get("bbox") is not None:
            rgb = frames.get(str(row["source"]), int(row.get("frame") or 0), row.get("source_type") == "video")
        if rgb is not None:
            mask = hand_mask(shape, hands_near(finder.find(rgb), tuple(row["bbox"])), np.asarray(row["align_matrix"]))
        else:
            mask = hand_mask(shape, finder.find(crops[i]))
        if mask.any():
            out[i] = mask
    return out


def has_real_label(sample: dict[str, Any]) -> bool:
    """Whether a face has a real occlusion label (what ``real_label`` would read), without reading it."""
    return bool(_label_candidates(sample) or getattr(sample.get("xseg_polygons"), "polylines", None))


def pick_faces(rows: list[dict[str, Any]], limit: int) -> list[int]:
    """Up to ``limit`` faces to train on: every face with a real label first, then the others spread evenly over
    their sources and frames (a long clip's faces, not its first minutes)."""
    real = [has_real_label(r) for r in rows]
    labelled = [i for i, r in enumerate(real) if r]
    others = sorted((i for i, r in enumerate(real) if not r),
                    key=lambda i: (str(rows[i].get("source")), rows[i].get("frame") or 0, i))
    room = max(limit - len(labelled), 0)
    if len(others) > room:
        others = [others[int(k)] for k in np.linspace(0, len(others) - 1, room)] if room else []
    return sorted(labelled[:limit] + others)


def training_set(name: str, subset: str | None = None, hands: int = 300, seed: int = 0, side: int = 256,
                 max_faces: int = 1500) -> dict[str, Any]:
    """Crops (resized to ``side``), targets and which targets are real labels, of up to ``max_faces`` faces; hands
    found beside up to ``hands`` faces are cut out of their hull targets and kept as occluders to paste elsewhere."""
    ds, view = face_samples(name, subset)
    fields = label_fields(ds) + [f for f in ("source", "frame", "source_type", "bbox", "align_matrix") if ds.has_sample_field(f)]
    rows = [dict(zip(fields, vals)) for vals in zip(*view.values(fields))]
    # a face whose landmarks failed has a guessed hull: it only teaches with a real label
    rows = [r for r in rows if r.get("landmarks_ok") is not False or has_real_label(r)]
    kept = []
    for row in (rows[i] for i in pick_faces(rows, max_faces)):
        crop = load_image(Path(row["filepath"]))
        if crop.shape[0] != side:  # imported sets mix crop sizes; the hand search maps into the resized crop
            if row.get("align_matrix") is not None:
                row["align_matrix"] = np.asarray(row["align_matrix"], dtype=np.float64) * (side / crop.shape[0])
            crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA if crop.shape[0] > side else cv2.INTER_CUBIC)
        label = real_label(row, side)
        if label is not None or row.get("landmarks_ok") is not False:  # (a label file may be gone)
            kept.append((row, crop, label))
    rows = [row for row, _, _ in kept]
    if len(rows) < 2:
        raise ValueError(f"{name!r} has {len(rows)} faces: a mask network needs a face-set")
    crops, targets, real, hulls, marks = [], [], [], [], []
    for row, crop, label in kept:
        size = crop.shape[0]
        pts = landmark_points(row["landmarks"]) * size
        marks.append(pts)
        hull = hull_mask(pts, size)
        crops.append(crop)
        hulls.append(hull)
        if label is None:  # the hull, except where its colour says it is not this face's skin
            target = hull.copy()
            target[unexplained_pixels(crop, pts, hull)] = UNKNOWN
        else:
            target = label.astype(np.float32) / 255.0
        targets.append(target)
        real.append(label is not None)
    crops_arr, hulls_arr = np.stack(crops), np.stack(hulls)
    targets_arr, real_arr = np.stack(targets), np.asarray(real)
    grown = np.stack([cv2.dilate(h, np.ones((9, 9), np.uint8)) for h in hulls_arr])  # textures from off the face
    bank = OccluderBank.from_crops(crops_arr, grown, np.random.default_rng(seed))
    for i in np.flatnonzero(real_arr):  # what a real label calls not face inside the hull: a real occluder
        occ = ((hulls_arr[i] > 0) & (targets_arr[i] < 0.5)).astype(np.uint8) * 255
        if (occ > 0).sum() > 30:
            bank.cutouts.append((crops_arr[i].copy(), cv2.dilate(occ, np.ones((5, 5), np.uint8))))
    picks = [int(i) for i in np.random.default_rng(seed).permutation(len(rows))[:hands]]
    for i, mask in hands_in_crops(rows, crops_arr, picks).items():
        bank.hands.append((crops_arr[i].copy(), mask))
        if not real_arr[i]:
            targets_arr[i] = targets_arr[i] * (mask == 0)
    coverage = median_coverage(marks, [side] * len(marks))
    return {"ids": [r["id"] for r in rows], "crops": crops_arr, "targets": targets_arr, "real": real_arr,
            "bank": bank, "coverage": coverage}
