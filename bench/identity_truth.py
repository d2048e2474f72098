"""Who is in each face, measured on hand-labelled real video (bench/labels/*.json, labels made here by eye).

For each labelled video: shot cuts (precision / recall of the cut frames), tracks (faces in a track of
another person, tracks across a cut), detection precision (share of stored detections that lie on a
labelled face; before and after the ``is_face`` rule), and `faceset identity` precision / recall per |yaw|
bin in dominant and reference mode, after (tracks) and before (faceset 0.8's per-face rule: average-linkage
clusters at 0.5, kept within 0.35 of the dominant centre or of the reference). Reference mode is run for
every person with at least 40 labelled faces, the reference being the sample photo (Lin-Manuel Miranda) or
a frame of the video cut around a frontal labelled head of the person (the first whose largest
face is that person's, landmarked, |yaw| within the embedding's reliable range).

Split: short_hamilton_clip and single_performer were looked at while choosing the settings (tune);
classroom and crowd never were (test).

    .venv/bin/python bench/identity_truth.py [--fresh]   # -> bench/out/identity_truth.txt
The videos are read from ../shared (research data, never copied into the project).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from video_labels import LABELS, VideoLabels, is_real_face  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
VIDEOS = {"short_hamilton_clip": (SHARED / "testdata/short_hamilton_clip.mp4", "tune"),
          "single_performer": (SHARED / "groundtruth/videos/single_performer.mp4", "tune"),
          "classroom": (SHARED / "groundtruth/videos/classroom.mp4", "test"),
          "crowd": (SHARED / "groundtruth/videos/crowd.mp4", "test")}
PHOTOS = {"lin": ROOT / "datasets/samples/lin-manuel-miranda.png"}
YAW_BINS = ((0, 30), (30, 60), (60, 91))
MIN_FACES = 40


def dataset_for(stem: str, path: Path, fresh: bool) -> str:
    """The bench dataset of one video (extracted once with the default settings; --fresh again)."""
    from curate.extract.local import extract
    from curate.dataset.store import dataset_exists, delete_dataset

    name = f"gt_{stem}"
    if fresh and dataset_exists(name):
        delete_dataset(name)
    if not dataset_exists(name):
        extract([path], name, "A", media_dir=Path(tempfile.gettempdir()) / f"faceset-bench-{stem}", progress=False)
    return name


def old_rule(emb: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """faceset 0.8: per face, within 0.35 of the reference mean or of the largest 0.5-linkage cluster's mean."""
    from sklearn.cluster import AgglomerativeClustering

    from curate.ops.identity import normalise_rows

    emb = normalise_rows(emb)
    if reference is None:
        labels = AgglomerativeClustering(n_clusters=None, distance_threshold=0.5, linkage="average").fit_predict(emb)
        anchor = emb[labels == np.bincount(labels).argmax()]
    else:
        anchor = normalise_rows(reference)
    centre = normalise_rows(anchor.mean(axis=0, keepdims=True))[0]
    return np.linalg.norm(emb - centre, axis=1) <= 0.35


def pr(kept: np.ndarray, truth: np.ndarray) -> str:
    """'precision / recall (kept of truth)'."""
    tp = int((kept & truth).sum())
    p = tp / kept.sum() if kept.sum() else float("nan")
    r = tp / truth.sum() if truth.sum() else float("nan")
    return f"{p:.3f} / {r:.3f} ({tp}/{int(truth.sum())})"


def reference_image(labels: VideoLabels, video: Path, person: str, out: Path) -> Path | None:
    """A frame of the video cut around one of the person's frontal labelled heads (2.4x the box): the first
    whose largest face lies on that head, landmarked and frontal enough for the embedding (what a user's photo
    of the person shows)."""
    from curate.analysis.registry import create_analyzer
    from curate.analysis.protocols import largest_face
    from curate.analysis.frame import face_pose
    from curate.ops.identity import identity_settings

    max_yaw = identity_settings("mediapipe").reliable_yaw
    analyzer = create_analyzer("mediapipe")
    cap = cv2.VideoCapture(str(video))
    try:
        for kf in labels.keyframes:
            for h in kf["heads"]:
                if h["person"] != person or h.get("face") != "frontal" or min(h["box"][2:]) < 40:
                    continue
                cap.set(cv2.CAP_PROP_POS_FRAMES, kf["frame"])
                ok, bgr = cap.read()
                if not ok:
                    continue
                x, y, w, hh = h["box"]
                cx, cy, side = x + w / 2, y + hh / 2, 1.2 * max(w, hh)
                H, W = bgr.shape[:2]
                x0, y0 = int(max(0, cx - side)), int(max(0, cy - side))
                crop = bgr[y0:int(min(H, cy + side)), x0:int(min(W, cx + side))]
                faces = analyzer.analyze(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
                if not faces:
                    continue
                face = largest_face(faces)
                fx, fy, fw, fh = face.bbox
                if face.landmarks_ok and abs(face_pose(face)[0]) <= max_yaw and labels.person_of(kf["frame"], [fx + x0, fy + y0, fw, fh])[0] == person:
                    path = out / f"{video.stem}-{person}.png"
                    cv2.imwrite(str(path), crop)
                    return path
    finally:
        cap.release()
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fresh", action="store_true", help="extract the videos again")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/identity_truth.txt")
    args = ap.parse_args()

    from curate.ops.identity import dataset_identity
    from curate.dataset.store import load_dataset, read_columns
    from curate.ops.tracks.shots import video_cuts
    from curate.ops.tracks.update import update_tracks

    lines = [f"# {Path(__file__).name}: identity, tracks, shots and detections on hand-labelled video", ""]
    totals: dict[str, list] = {"dominant": [], "reference": []}
    tmp = Path(tempfile.mkdtemp(prefix="faceset-refs-"))
    for stem, (video, split) in VIDEOS.items():
        label_file = LABELS / f"{stem}.json"
        if not video.exists() or not label_file.exists():
            lines.append(f"## {stem}: missing ({video} or {label_file})")
            continue
        labels = VideoLabels.load(label_file)
        name = dataset_for(stem, video, args.fresh)
        ds = load_dataset(name)
        update_tracks(ds, progress=False)
        cuts, _ = video_cuts(video)
        cols = read_columns(ds, ["frame", "bbox", "track", "shot", "yaw", "is_face"], vector="embedding")
        frames = np.asarray(cols["frame"])
        pv = [labels.person_of(f, b) for f, b in zip(cols["frame"], cols["bbox"])]
        person = np.asarray([p or "-" for p, _ in pv])
        real = np.asarray([is_real_face(p, v) for p, v in pv])
        is_face = np.asarray([v is not False for v in cols["is_face"]])
        track = np.asarray(cols["track"])
        yaw = np.abs(np.asarray(cols["yaw"], float))
        lines.append(f"## {stem} ({split}): {len(frames)} detections, {int(real.sum())} on labelled faces, "
                     f"{len(labels.people)} people labelled")
        hit = set(cuts) & set(labels.cuts)
        lines.append(f"shots: cuts found {sorted(cuts)}, labelled {labels.cuts}: precision "
                     f"{len(hit) / max(len(cuts), 1):.2f}, recall {len(hit) / max(len(labels.cuts), 1):.2f}")
        wrong_in_track = crossing = 0
        for t in np.unique(track):
            m = track == t
            people = Counter(person[m & real])
            if people:
                wrong_in_track += int((m & real).sum()) - people.most_common(1)[0][1]
            crossing += len(set(labels.shot(int(f)) for f in frames[m])) > 1
        lines.append(f"tracks: {len(np.unique(track))}; labelled faces in a track of another person: {wrong_in_track} "
                     f"of {int(real.sum())}; tracks across a labelled cut: {crossing}")
        lines.append(f"detections: precision {real.mean():.3f} all stored, {real[is_face].mean():.3f} with is_face "
                     f"({int((~is_face).sum())} set False, {int((~is_face & real).sum())} of them real faces)")
        counts = Counter(person[real])
        (dominant, first), *rest = counts.most_common(2)
        clear = not rest or first >= 1.5 * rest[0][1]  # a crowd has no dominant person to measure against
        if not clear:
            lines.append(f"dominant: none ({dominant} {first} faces, {rest[0][0]} {rest[0][1]}): not measured")
        for mode, targets in (("dominant", [dominant] if clear else []),
                              ("reference", [p for p, n in counts.most_common() if n >= MIN_FACES])):
            for target in targets:
                refs = None
                if mode == "reference":
                    ref = PHOTOS.get(target) or reference_image(labels, video, target, tmp)
                    if ref is None:
                        continue
                    refs = [str(ref)]
                try:
                    scores, _ = dataset_identity(name, "A", references=refs)
                except ValueError as exc:
                    lines.append(f"{mode} {target}: {exc}")
                    continue
                truth = person == target
                ref_vecs = None
                if refs:
                    from curate.ops.identity.dataset import reference_vectors
                    ref_vecs = reference_vectors("mediapipe", refs)
                before = old_rule(cols["embedding"], ref_vecs)
                kept = scores.ok
                lines.append(f"{mode:<9} {target:<14} after: P/R {pr(kept, truth)}, unsure {int(scores.unsure[truth].sum())}"
                             f" of its faces | before: P/R {pr(before, truth)}")
                bins = []
                for lo, hi in YAW_BINS:
                    m = (yaw >= lo) & (yaw < hi)
                    bins.append(f"|yaw| {lo}-{hi}: {pr(kept[m], truth[m])} before {pr(before[m], truth[m])}")
                lines.append("          " + "; ".join(bins))
                totals[mode].append((kept, before, truth, yaw))
        lines.append("")
    lines.append("## all videos together (faces pooled over every run above)")
    for mode, runs in totals.items():
        if not runs:
            continue
        kept, before, truth, yaw = (np.concatenate(x) for x in zip(*runs))
        lines.append(f"{mode:<9} after: P/R {pr(kept, truth)} | before: P/R {pr(before, truth)}")
        for lo, hi in YAW_BINS:
            m = (yaw >= lo) & (yaw < hi)
            lines.append(f"          |yaw| {lo}-{hi}: after {pr(kept[m], truth[m])}, before {pr(before[m], truth[m])}")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
