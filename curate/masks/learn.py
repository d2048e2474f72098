"""`faceset mask train|apply|fix`: a face-set's learned occlusion mask, stored as FiftyOne segmentations.

- train: targets are a face's best real label (``mask_fixed`` a user corrected, else an occlusion-aware mask
  imported from DeepFaceLab / faceswap, else its XSeg polygons), or its landmark hull with any hands the hand
  detector finds on the crop cut out; synthetic occluders do the rest (``curate.masks.net``).
- apply: the network's mask of every face, written as PNGs beside the crops and set as the ``mask_learned``
  segmentation (the App overlays it; export, training and conversion use it).
- fix: crops and masks out to a folder for painting in any image editor, and back in as ``mask_fixed`` — the
  strongest label of the next training run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from curate.analysis.hands import HandFinder, hand_mask, hands_near
from curate.core.align import median_coverage
from curate.core.landmarks import LEFT_BROW, LEFT_EYE, NOSE, OUTER_MOUTH, RIGHT_BROW, RIGHT_EYE, fill_parts
from curate.core.media import fingerprint, load_image, write_image
from curate.core.quality import hull_mask
from curate.dataset.store import load_dataset, media_dir
from curate.extract.cluster import open_task_dataset, use_database
from curate.masks.fields import FIXED_FIELD, LEARNED_FIELD, polygons_mask, segmentation_array
from curate.masks.net import (
    UNKNOWN,
    MaskTrainSettings,
    OccluderBank,
    load_masknet,
    predict_masks,
    save_masknet,
    train_masknet,
)

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


def _samples(name: str, subset: str | None, view: str | None = None) -> Any:
    from fiftyone import ViewField as F

    from curate.dataset.subsets import check_subset

    check_subset(subset, optional=True)
    ds = load_dataset(name)
    base = ds.load_saved_view(view) if view else ds
    return ds, (base.match(F("subset") == subset) if subset else base)


def _fields(ds: Any) -> list[str]:
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


def _points(landmarks: Any) -> np.ndarray:
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
    ds, view = _samples(name, subset)
    fields = _fields(ds) + [f for f in ("source", "frame", "source_type", "bbox", "align_matrix") if ds.has_sample_field(f)]
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
        pts = _points(row["landmarks"]) * size
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


def default_model_path(name: str) -> Path:
    """Where `faceset mask train` keeps a dataset's mask network."""
    return media_dir(load_dataset(name)).parent / "masks" / f"{name}-mask.safetensors"


def mask_train(name: str, settings: MaskTrainSettings, subset: str | None = None, out: Path | None = None,
               progress: bool = True, max_faces: int = 1500) -> tuple[Path, dict[str, Any]]:
    """Train a dataset's mask network on up to ``max_faces`` of its faces (all real labels first); returns its
    path and a summary (faces, real labels, hands, losses)."""
    from tqdm import tqdm

    data = training_set(name, subset, seed=settings.seed, max_faces=max_faces)
    with tqdm(total=settings.iters, desc="mask train", unit="it", disable=not progress, dynamic_ncols=True) as bar:
        def tick(it: int, loss: float) -> None:
            bar.update(1)
            if it % 20 == 0:
                bar.set_postfix(loss=f"{loss:.3f}")
        net, losses = train_masknet(data["crops"], data["targets"], data["bank"], settings, tick, data["real"])
    net.coverage = data["coverage"]  # how its crops were framed: other crops are re-aligned to it
    summary = {"faces": len(data["ids"]), "real_labels": int(data["real"].sum()), "hand_cutouts": len(data["bank"].hands),
               "textures": len(data["bank"].textures), "iters": settings.iters, "size": settings.size,
               "coverage": data["coverage"],
               "first_loss": float(np.mean(losses[:20])) if losses else None,
               "last_loss": float(np.mean(losses[-20:])) if losses else None}
    path = save_masknet(Path(out) if out else default_model_path(name), net, settings.size, summary)
    return path, summary


@dataclass(frozen=True)
class MaskChunk:
    """Faces one mask task predicts: their ids, crops and landmarks ([0, 1] crop coordinates), the network,
    where the PNGs go."""

    dataset: str
    model: str
    device: str
    folder: str
    ids: tuple[str, ...]
    paths: tuple[str, ...]
    points: tuple[Any, ...]
    database_uri: str | None = None

    @property
    def label(self) -> str:
        """How an error names this task."""
        return f"{self.dataset}: faces {self.ids[0]}..{self.ids[-1]}"


_NETS: dict[tuple[str, str, str], tuple[Any, int]] = {}


def _masknet(model: str, device: str) -> tuple[Any, int]:
    """The mask network of this file on this device, loaded once per process (again once the file changes:
    a network trained anew to the same path)."""
    try:
        key = (model, device, fingerprint(Path(model)))
    except OSError:  # missing: load_masknet says so
        return load_masknet(Path(model), device)
    if key not in _NETS:
        _NETS[key] = load_masknet(Path(model), device)
    return _NETS[key]


def predict_chunk(chunk: MaskChunk, batch: int = 64) -> dict[str, str]:
    """Masks of a chunk's faces as PNGs (face id -> path); the same files on every run (safe to retry)."""
    net, size = _masknet(chunk.model, chunk.device)
    folder = Path(chunk.folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for k in range(0, len(chunk.ids), batch):
        crops = [load_image(Path(p)) for p in chunk.paths[k:k + batch]]  # (sizes may differ: imported sets)
        marks = [np.asarray(pts, dtype=np.float64) * crop.shape[0] for pts, crop in zip(chunk.points[k:k + batch], crops)]
        for sid, prob in zip(chunk.ids[k:k + batch], predict_masks(net, crops, size, marks)):
            png = folder / f"{sid}.png"
            write_image(np.repeat(((prob > 0.5) * 255).astype(np.uint8)[..., None], 3, 2), png)
            out[sid] = str(png)
    return out


def apply_chunk(chunk: MaskChunk) -> int:
    """Cluster task: predict a chunk's masks and store them on its faces (worker side)."""
    use_database(chunk.database_uri)
    _store_masks(open_task_dataset(chunk.dataset), predict_chunk(chunk))
    return len(chunk.ids)


def _store_masks(ds: Any, pngs: dict[str, str]) -> None:
    import fiftyone as fo

    if not ds.has_sample_field(LEARNED_FIELD):
        ds.add_sample_field(LEARNED_FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.Segmentation)
    ds.select(list(pngs)).set_values(LEARNED_FIELD, {sid: fo.Segmentation(mask_path=p) for sid, p in pngs.items()},
                                     key_field="id")


def mask_apply(name: str, model: Path | None = None, subset: str | None = None, device: str = "auto",
               progress: bool = True, cluster: str | None = None, chunk: int = 512) -> int:
    """Run the mask network on every face; PNG masks beside the crops, ``mask_learned`` segmentations set.

    ``cluster``: a Dask scheduler's address (else $DASK_SCHEDULER_ADDRESS): chunks of ``chunk`` faces run on
    its workers, each storing its own faces' masks; none: here. The model and crops must be on a shared path.
    """
    import fiftyone as fo
    from tqdm import tqdm

    from curate.extract.cluster import cluster_address, connect, run_tasks

    ds, view = _samples(name, subset)
    model = (Path(model) if model else default_model_path(name)).absolute()
    _masknet(str(model), device)  # a missing or foreign file: one error before any work (here, the one load)
    folder = str(media_dir(ds) / "masks" / "learned")
    ids, paths, landmarks = view.values(["id", "filepath", "landmarks"])
    points = [_points(m).tolist() for m in landmarks]
    address = cluster_address(cluster)
    chunks = [MaskChunk(name, str(model), device, folder, tuple(ids[k:k + chunk]), tuple(paths[k:k + chunk]),
                        tuple(points[k:k + chunk]), fo.config.database_uri) for k in range(0, len(ids), chunk)]
    bar = tqdm(total=len(ids), desc="mask apply", unit="face", disable=not progress, dynamic_ncols=True)
    try:
        if address is None:
            for c in chunks:
                _store_masks(ds, predict_chunk(c))
                bar.update(len(c.ids))
            return len(ids)
        client = connect(address)
        try:
            failed = run_tasks(client, chunks, lambda c, n: bar.update(n), fn=apply_chunk)
        finally:
            client.close()
    finally:
        bar.close()
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(chunks)} mask tasks failed; re-run to finish them: "
                           f"{': '.join(failed[0])}")
    ds.reload()
    return len(ids)


def fix_export(name: str, folder: Path, view: str | None = None, subset: str | None = None) -> int:
    """Write each face's crop and its current mask (fixed, else learned, else hull) as PNGs to paint on."""
    ds, samples = _samples(name, subset, view)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fields = _fields(ds) + ([LEARNED_FIELD] if ds.has_sample_field(LEARNED_FIELD) else [])
    count = 0
    for vals in zip(*samples.values(fields)):
        row = dict(zip(fields, vals))
        crop = load_image(Path(row["filepath"]))
        size = crop.shape[0]
        mask = segmentation_array(row.get(FIXED_FIELD)) if row.get(FIXED_FIELD) else segmentation_array(row.get(LEARNED_FIELD))
        if mask is None:
            mask = (hull_mask(_points(row["landmarks"]) * size, size) * 255).astype(np.uint8)
        write_image(crop, folder / f"{row['id']}.png")
        cv2.imwrite(str(folder / f"{row['id']}_mask.png"), cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST))
        count += 1
    (folder / "README.txt").write_text("Paint each <id>_mask.png white where the face is and black where anything "
                                       "covers it (hands, microphones, hair), then: faceset mask fix DATASET --from "
                                       "THIS_FOLDER\n")
    return count


def fix_import(name: str, folder: Path) -> tuple[int, list[tuple[str, str]]]:
    """Read painted ``<id>_mask.png`` files back as ``mask_fixed`` segmentations; returns (count, problems)."""
    import fiftyone as fo

    ds = load_dataset(name)
    store = media_dir(ds) / "masks" / "fixed"
    store.mkdir(parents=True, exist_ok=True)
    present = set(ds.values("id"))
    values, problems = {}, []
    for path in sorted(Path(folder).glob("*_mask.png")):
        sid = path.name[: -len("_mask.png")]
        if sid not in present:
            problems.append((str(path), "no face with this id in the dataset"))
            continue
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            problems.append((str(path), "not a readable PNG"))
            continue
        out = store / f"{sid}.png"
        cv2.imwrite(str(out), np.where(mask > 127, 255, 0).astype(np.uint8))
        values[sid] = fo.Segmentation(mask_path=str(out))
    if values:
        if not ds.has_sample_field(FIXED_FIELD):
            ds.add_sample_field(FIXED_FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.Segmentation)
        ds.set_values(FIXED_FIELD, values, key_field="id")
    return len(values), problems
