"""`faceset identity` on still photos turned 60-90 degrees (no track to carry the identity): CMU faces.

Data: ``/work/shared/groundtruth/cmu_faces`` (10 people; head pose straight / left / right / up; read from there
only, upscaled 4x into a temporary folder). All images are extracted into one dataset (subset A, default
backend); then, for each person, `faceset identity` runs in reference mode with that person's straight,
eyes-open photos as the reference, and every turned (left/right) face of every person is scored:

- kept / another person / unsure, against the truth (is it the reference's person?);
- pooled precision and recall of the kept faces, and the share left unsure;
- "first look only" is the decision without the second look (dlib alone: a turned still is always unsure).

    .venv/bin/python bench/identity_stills.py [--fresh]     # -> bench/out/identity_stills.txt
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from report import emit  # noqa: E402

DATA = Path("/work/shared/groundtruth/cmu_faces")
OUT = ROOT / "bench" / "out" / "identity_stills.txt"
NAME = "gt_cmu_stills"
UPSCALE = 4


def upscaled(rows: list[dict[str, str]], folder: Path) -> dict[str, Path]:
    """Each CMU image upscaled 4x (cubic) as a PNG in ``folder`` (made once)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for r in rows:
        path = folder / (Path(r["file"]).stem + ".png")
        if not path.exists():
            grey = cv2.imread(str(DATA / r["file"]), cv2.IMREAD_GRAYSCALE)
            cv2.imwrite(str(path), cv2.resize(grey, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC))
        out[r["file"]] = path
    return out


def centre_auc(ds, rows: list[dict[str, str]], files: dict[str, Path]) -> str:  # noqa: ANN001 - a dataset
    """Frontal-vs-turned AUC against each person's reference centre (its straight photos), dlib alone and the
    second look's fused descriptor, on the stored faces (largest detection of each photo)."""
    from embedder_auc import auc

    from curate.ops.identity.second_look import frame_faceres, fuse, fused_centre
    from curate.ops.identity.cluster import normalise_rows
    from curate.dataset.store import read_columns

    cols = read_columns(ds, ["source", "source_landmarks", "face_size"], vector="embedding")
    best: dict[str, int] = {}
    for k, (src, size) in enumerate(zip(cols["source"], cols["face_size"])):
        if src not in best or size > cols["face_size"][best[src]]:
            best[src] = k
    row_of = {str(files[r["file"]]): r for r in rows}
    idx = np.array([best[s] for s in best if s in row_of])
    person = np.array([row_of[cols["source"][k]]["person"] for k in idx])
    pose = np.array([row_of[cols["source"][k]]["head_pose"] for k in idx])
    faceres, _ = frame_faceres([(cols["source"][k], 0, False, np.asarray(cols["source_landmarks"][k], float)) for k in idx])
    dlib = normalise_rows(cols["embedding"][idx])
    people = sorted(set(person))
    turned = np.isin(pose, ["left", "right"])
    same = person[turned][:, None] == np.array(people)[None]
    out = []
    for name, vecs, centres in (
            ("dlib (first look)", dlib, normalise_rows(np.stack([dlib[(person == p) & (pose == "straight")].mean(axis=0) for p in people]))),
            ("dlib + faceres (second look)", fuse(dlib, faceres),
             np.stack([fused_centre(dlib[(person == p) & (pose == "straight")], faceres[(person == p) & (pose == "straight")]) for p in people]))):
        d = np.linalg.norm(vecs[turned][:, None] - centres[None], axis=-1)
        out.append(f"{name}: AUC {auc(same.ravel(), d.ravel()):.4f}")
    return ("turned faces vs each person's reference centre (same faces as above), " + "; ".join(out)
            + f"; photos with a detection: {int(turned.sum())} of 158 turned ({turned.sum() / 158:.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="extract the dataset again")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from fiftyone import ViewField as F

    from curate.extract.local import extract
    from curate.ops.identity.dataset import dataset_identity
    from curate.dataset.store import dataset_exists, delete_dataset, load_dataset, read_columns

    rows = list(csv.DictReader(open(DATA / "labels.csv")))
    files = upscaled(rows, Path(tempfile.gettempdir()) / "faceset-cmu-stills")
    if args.fresh and dataset_exists(NAME):
        delete_dataset(NAME)
    if not dataset_exists(NAME):
        extract([str(p) for p in files.values()], NAME, "A", media_dir=Path(tempfile.gettempdir()) / "faceset-bench-cmu",
                progress=False)
    ds = load_dataset(NAME)
    by_path = {str(p): r for r, p in zip(rows, files.values())}
    turned_files = {str(files[r["file"]]) for r in rows if r["head_pose"] in ("left", "right")}
    found_turned = len(set(ds.match(F("is_face") != False).distinct("source")) & turned_files)  # noqa: E712
    lines = ["# identity_stills.py: faceset identity (reference mode) on CMU faces turned 60-90 degrees, stills", "",
             f"turned photos: {len(turned_files)}, with a face found (is_face after extraction): {found_turned} ({found_turned / len(turned_files):.1%})",
             "per reference person: its straight photos (half with sunglasses, as half the turned ones) as the reference; "
             "scored: the largest detection of every turned photo", ""]
    people = sorted({r["person"] for r in rows})
    ids, extracted_is_face = ds.values("id"), ds.values("is_face")  # each person's run starts from these
    totals = {"kept": 0, "right": 0, "truth": 0, "unsure_truth": 0, "unsure": 0, "faces": 0, "first_kept": 0}
    lines.append(f"{'person':<10} {'refs':>4} {'own turned':>10} {'kept':>5} {'right':>5} {'unsure own':>10} "
                 f"{'unsure all':>10} {'P':>6} {'R':>6}")
    for person in people:
        refs = [str(files[r["file"]]) for r in rows if r["person"] == person and r["head_pose"] == "straight"]
        ds.set_values("is_face", dict(zip(ids, extracted_is_face)), key_field="id")
        scores, _ = dataset_identity(NAME, "A", references=refs)
        cols = read_columns(ds.match(F("subset") == "A"), ["source", "face_size", "is_face"])
        best: dict[str, int] = {}
        for k, (src, size, real) in enumerate(zip(cols["source"], cols["face_size"], cols["is_face"])):
            if src in turned_files and (src not in best or size > cols["face_size"][best[src]]):
                best[src] = k
        idx = np.array(sorted(best.values()))
        truth = np.array([by_path[cols["source"][k]]["person"] == person for k in idx])
        kept, unsure = scores.ok[idx], scores.unsure[idx]
        right = int((kept & truth).sum())
        p = right / max(int(kept.sum()), 1)
        r = right / max(int(truth.sum()), 1)
        lines.append(f"{person:<10} {len(refs):>4} {int(truth.sum()):>10} {int(kept.sum()):>5} {right:>5} "
                     f"{int(unsure[truth].sum()):>10} {int(unsure.sum()):>10} {p:>6.3f} {r:>6.3f}")
        totals["kept"] += int(kept.sum())
        totals["right"] += right
        totals["truth"] += int(truth.sum())
        totals["unsure_truth"] += int(unsure[truth].sum())
        totals["unsure"] += int(unsure.sum())
        totals["faces"] += len(idx)
    t = totals
    lines += ["", centre_auc(ds, rows, files)]
    lines += ["", f"pooled: precision {t['right'] / max(t['kept'], 1):.3f}, recall {t['right'] / max(t['truth'], 1):.3f} "
                  f"({t['right']} of {t['truth']} own turned faces kept, {t['kept'] - t['right']} of other people), "
                  f"unsure {t['unsure_truth'] / max(t['truth'], 1):.1%} of own faces, {t['unsure'] / max(t['faces'], 1):.1%} of all scored",
              "first look only (dlib, turned stills are unsure past 35 degrees): precision nan, recall 0.000"]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
