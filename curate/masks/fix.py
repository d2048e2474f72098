"""`faceset mask fix`: crops and masks out to a folder for painting in any image editor, and back in as
``mask_fixed`` — the strongest label of the next training run."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from curate.core.media import load_image, write_image
from curate.core.quality import hull_mask
from curate.dataset.store import load_dataset, media_dir
from curate.masks.fields import FIXED_FIELD, LEARNED_FIELD, segmentation_array
from curate.masks.labels import face_samples, label_fields, landmark_points


def fix_export(name: str, folder: Path, view: str | None = None, subset: str | None = None) -> int:
    """Write each face's crop and its current mask (fixed, else learned, else hull) as PNGs to paint on."""
    ds, samples = face_samples(name, subset, view)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fields = label_fields(ds) + ([LEARNED_FIELD] if ds.has_sample_field(LEARNED_FIELD) else [])
    count = 0
    for vals in zip(*samples.values(fields)):
        row = dict(zip(fields, vals))
        crop = load_image(Path(row["filepath"]))
        size = crop.shape[0]
        mask = segmentation_array(row.get(FIXED_FIELD)) if row.get(FIXED_FIELD) else segmentation_array(row.get(LEARNED_FIELD))
        if mask is None:
            mask = (hull_mask(landmark_points(row["landmarks"]) * size, size) * 255).astype(np.uint8)
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
