"""Occlusion masks against hand-labelled ones: landmark hull, hull minus detected hands, the learned mask.

    .venv/bin/python bench/mask_iou.py [--iters 1200] [--out bench/out]
    .venv/bin/python bench/mask_iou.py --render-labels     # datasets/occlusion/masks/*.png + contact_sheet.png

The labelled set (datasets/occlusion/labels.json): 24 aligned crops of the sample clip where a microphone or
hands cover part of the face, with the occluders drawn by eye as polygons; a face's label is its landmark hull
minus those polygons (what a face-swap mask should cover). Split by frame: "tune" (13 faces, frames 84-156:
the only ones looked at while choosing the defaults) and "test" (17 faces, frames 159-210, held back).

Methods, each on the same crops:
- hull: the 68-point landmark hull (what conversion uses by default);
- hull - hands: minus the hands MediaPipe's palm + hand models find in the source frame (`--mask hull,hands`);
- learned: `faceset mask train` on the clip's faces (extracted into a private database, every 3rd frame),
  applied to the crops (`--mask learned`); learned - hands: both; hull & learned: the two intersected
  (`--mask hull,learned`), and minus hands (`--mask hull,learned,hands`);
- learned, tune fixed: the same after a user fixed the tune faces' masks (`faceset mask fix`): their labels
  become real training labels; the test faces stay held back.
Prints mean IoU per split and the ratio to the hull's; writes bench/out/mask_iou.txt and mask_iou.png.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "datasets" / "occlusion"


def load_labels() -> list[dict]:
    """The labelled faces with their crop (RGB), landmarks and label mask (uint8 0/255)."""
    from curate.core.quality import hull_mask

    data = json.loads((LABELS / "labels.json").read_text())
    faces = []
    for face in data["faces"]:
        crop = cv2.cvtColor(cv2.imread(str(LABELS / face["crop"])), cv2.COLOR_BGR2RGB)
        size = crop.shape[0]
        hull = (hull_mask(np.asarray(face["landmarks"]), size) * 255).astype(np.uint8)
        occ = np.zeros((size, size), np.uint8)
        for poly in face["occluders"]:
            cv2.fillPoly(occ, [np.asarray(poly, np.int32)], 255)
        faces.append({**face, "rgb": crop, "hull": hull, "occ": occ, "label": np.where(occ > 0, 0, hull).astype(np.uint8)})
    return faces


def render_labels() -> None:
    """The label masks as PNGs and a contact sheet (crop | occluders drawn | label) of all of them."""
    faces = load_labels()
    (LABELS / "masks").mkdir(exist_ok=True)
    tiles = []
    for f in faces:
        cv2.imwrite(str(LABELS / "masks" / (Path(f["crop"]).stem + ".png")), f["label"])
        bgr = cv2.cvtColor(f["rgb"], cv2.COLOR_RGB2BGR)
        drawn = bgr.copy()
        drawn[f["occ"] > 0] = (0.4 * drawn[f["occ"] > 0] + (153, 0, 153)).astype(np.uint8)
        label = cv2.cvtColor(f["label"], cv2.COLOR_GRAY2BGR)
        tile = np.hstack([bgr, drawn, label])
        cv2.putText(tile, f"frame {f['frame']} ({f['split']})", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1)
        tiles.append(cv2.resize(tile, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    rows = [np.hstack(tiles[i:i + 3]) for i in range(0, len(tiles) - len(tiles) % 3, 3)]
    cv2.imwrite(str(LABELS / "contact_sheet.png"), np.vstack(rows))
    print(f"{len(faces)} label masks in {LABELS / 'masks'}, sheet {LABELS / 'contact_sheet.png'}")


def iou(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """IoU of two 0/255 masks; ``border`` > 0 leaves out the pixels within that many px of the label's (``b``)
    edges, as PASCAL VOC's 'void' band does: outline noise of a px or two (which conversion's feathering hides)
    then does not count, what is kept out or missed beyond it does."""
    a, b = a > 127, b > 127
    if border:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * border + 1,) * 2)
        keep = cv2.dilate(b.astype(np.uint8), k) == cv2.erode(b.astype(np.uint8), k)
        a, b = a & keep, b & keep
    return float((a & b).sum() / max((a | b).sum(), 1))


def hands_in_crops(faces: list[dict]) -> list[np.ndarray]:
    """Hands found in each face's source frame, as a mask in its crop (what training and convert --mask hands
    do: curate.masks.labels.hands_in_crops, with each face's box from its landmarks)."""
    from curate.masks.labels import hands_in_crops as find

    rows = []
    for f in faces:
        matrix = np.asarray(f["align_matrix"])
        inv = cv2.invertAffineTransform(matrix)
        pts = np.asarray(f["landmarks"]) @ inv[:, :2].T + inv[:, 2]
        lo, hi = pts.min(0), pts.max(0)
        rows.append({"source": str(ROOT / "datasets" / f["source"]), "frame": f["frame"], "source_type": "video",
                     "bbox": (lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]), "align_matrix": matrix})
    crops = np.stack([f["rgb"] for f in faces])
    found = find(rows, crops, list(range(len(faces))))
    return [found.get(k, np.zeros(crops.shape[1:3], np.uint8)) for k in range(len(faces))]


def learned_masks(faces: list[dict], iters: int, size: int) -> tuple[dict[str, list[np.ndarray]], dict, float]:
    """Train the face-set's mask network on the clip (private database) and apply it to the labelled crops:
    once from the set alone, once after a user 'fixed' the tune faces' masks (their labels as mask_fixed)."""
    tmp = Path(tempfile.mkdtemp(prefix="faceset-maskiou-"))
    os.environ.update({"FIFTYONE_DATABASE_DIR": str(tmp / "db"), "FIFTYONE_DEFAULT_DATASET_DIR": str(tmp / "media"),
                       "FIFTYONE_DO_NOT_TRACK": "true"})
    import fiftyone as fo

    from curate.extract.local import extract
    from curate.masks import FIXED_FIELD
    from curate.masks.net import MaskTrainSettings, load_masknet, predict_masks
    from curate.masks.learn import mask_train

    name = f"maskiou-{os.getpid()}"
    out: dict[str, list[np.ndarray]] = {}
    try:
        extract([ROOT / "datasets" / "samples" / "short_hamilton_clip.mp4"], name, "A", every=3, progress=False)
        ds = fo.load_dataset(name)
        seconds = 0.0
        for variant in ("learned", "learned, tune fixed"):
            if variant != "learned":  # the user paints the tune faces' masks (`faceset mask fix`): real labels
                by_frame = {(f, i): sid for sid, f, i in zip(*ds.values(["id", "frame", "face_index"]))}
                fixed = {by_frame[(f["frame"], f["face_index"])]: fo.Segmentation(mask=(f["label"] > 127).astype(np.uint8))
                         for f in faces if f["split"] == "tune" and (f["frame"], f["face_index"]) in by_frame}
                ds.add_sample_field(FIXED_FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.Segmentation)
                ds.set_values(FIXED_FIELD, fixed, key_field="id")
            started = time.time()
            path, summary = mask_train(name, MaskTrainSettings(size=size, iters=iters), out=tmp / "mask.safetensors")
            seconds = time.time() - started
            net, net_size = load_masknet(path)
            marks = np.stack([np.asarray(f["landmarks"]) for f in faces])
            probs = predict_masks(net, np.stack([f["rgb"] for f in faces]), net_size, marks)
            out[variant] = [((p > 0.5) * 255).astype(np.uint8) for p in probs]
        return out, summary, seconds
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)
        _stop_private_database()
        shutil.rmtree(tmp, ignore_errors=True)


def _stop_private_database() -> None:
    """Stop the mongod this process started in its private folder before the folder goes (else it aborts
    noisily at exit); FiftyOne has no public call for it."""
    from fiftyone.core.odm import database

    database._disconnect()
    service = getattr(database, "_db_service", None)
    if service is not None:
        service.stop()
        database._db_service = None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=1200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--render-labels", action="store_true")
    args = ap.parse_args()
    if args.render_labels:
        render_labels()
        return
    faces = load_labels()
    hands = hands_in_crops(faces)
    learned, summary, seconds = learned_masks(faces, args.iters, args.size)
    cut = lambda masks: [np.where(h > 0, 0, m).astype(np.uint8) for m, h in zip(masks, hands)]  # noqa: E731
    hulls = [f["hull"] for f in faces]
    methods = {"hull": hulls, "hull - hands": cut(hulls)}
    for variant, masks in learned.items():
        both = [np.where(h > 0, m, 0).astype(np.uint8) for m, h in zip(masks, hulls)]  # --mask hull,learned
        methods[variant] = masks
        methods[variant + " - hands"] = cut(masks)
        methods["hull & " + variant] = both
        methods["hull & " + variant + " - hands"] = cut(both)
    n_tune, n_test = (sum(f["split"] == s for f in faces) for s in ("tune", "test"))
    lines = [f"{len(faces)} hand-labelled crops of the sample clip (microphone / hands over the face); "
             f"mask network: {summary['faces']} faces, {args.iters} steps at {args.size} px, {seconds:.0f} s a run on "
             f"{os.cpu_count()} cores", "",
             f"{'method':<40} {f'IoU tune ({n_tune})':>14} {f'IoU test ({n_test})':>14} {'test / hull':>12} "
             f"{'IoU test, 3 px edge void':>25} {'face kept (test)':>17} {'occluder kept out (test)':>25}"]
    base = None
    for name, masks in methods.items():
        scores = {split: [iou(m, f["label"]) for m, f in zip(masks, faces) if f["split"] == split] for split in ("tune", "test")}
        kept_out = [1 - (m[(f["occ"] > 0) & (f["hull"] > 0)] > 127).mean() for m, f in zip(masks, faces)
                    if f["split"] == "test" and ((f["occ"] > 0) & (f["hull"] > 0)).any()]
        test = float(np.mean(scores["test"]))
        base = base or test
        void = np.mean([iou(m, f["label"], border=3) for m, f in zip(masks, faces) if f["split"] == "test"])
        face = np.mean([(m[f["label"] > 127] > 127).mean() for m, f in zip(masks, faces) if f["split"] == "test"])
        lines.append(f"{name:<40} {np.mean(scores['tune']):>14.3f} {test:>14.3f} {test / base:>11.2f}x "
                     f"{void:>25.3f} {face:>17.1%} {np.mean(kept_out):>25.0%}")
    lines += ["", "occluder kept out: share of the labelled occluder pixels inside the hull that the mask leaves out",
              "face kept: share of the label's face pixels the mask keeps; 3 px edge void: IoU without the pixels "
              "within 3 px (of 256) of the label's edges",
              "hull & X: the hull intersected with X (convert --mask hull,learned[,hands])",
              "'tune fixed': the tune faces' labels given to training as masks a user fixed (their IoU is then "
              "not a held-back score)"]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mask_iou.txt").write_text(text + "\n")
    tiles = []
    for f, h, l, t in zip(faces, methods["hull - hands"], methods["hull & learned - hands"],
                          methods["hull & learned, tune fixed - hands"]):
        row = [f["rgb"], f["label"], f["hull"], h, l, t]
        row = [cv2.cvtColor(x, cv2.COLOR_GRAY2RGB) if x.ndim == 2 else x for x in row]
        tiles.append(cv2.resize(np.hstack(row), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    sheet = np.vstack(tiles[-8:])  # held-back: crop | label | hull | hull-hands | hull&learned-hands | same, tune fixed
    cv2.imwrite(str(args.out / "mask_iou.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    sys.exit(main())
