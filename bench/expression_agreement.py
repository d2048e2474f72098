"""Expression labels against the hand-labelled set (datasets/expressions), per backend and split.

    .venv/bin/python bench/expression_agreement.py [--fit] [--out bench/out/expression_agreement.txt]

Each labelled face is found again in its frame by every backend (the face whose landmark centre lies nearest
the labelled centre, within a quarter of the face size). Printed per backend: faces found, agreement of the
label with the hand label and the confusion matrix on the ``tune`` split and on the held-back ``test`` split
(never used to set ranges), and the AUC with which the inner-lip gap alone separates mouth_open from smile.
``--fit`` prints, from the tune split only, the mesh ranges that maximise agreement there (the smile of a mesh
face is the learned model's since issue 26, so only ``mouth_open``'s range still matters for it).
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from expression_set import ROOT, frames, read_set  # noqa: E402
from report import emit  # noqa: E402

from curate.analysis.frame import face_expression, face_pose  # noqa: E402
from curate.analysis.registry import create_analyzer  # noqa: E402
from curate.core.expression import (  # noqa: E402
    MESH_RANGES,
    expression_ratios,
    label_expression,
    mesh_expression_ratios,
    scores_from_ratios,
    _RANGES,
)

LABELS = ("neutral", "smile", "mouth_open", "eyes_closed")
SIDE_YAW = 40  # agreement is also reported apart for faces turned further than this


def measure(backends: list[str]) -> dict[str, list[dict | None]]:
    """Per backend, per labelled face: the raw expression ratios of the matching face, or None if not found."""
    rows = read_set()
    wanted = defaultdict(list)
    for i, r in enumerate(rows):
        wanted[(r["source"], r["frame"])].append(i)
    analyzers = {name: create_analyzer(name) for name in backends}
    out: dict[str, list[dict | None]] = {name: [None] * len(rows) for name in backends}
    for source, frame, rgb in frames(every=1, only=set(wanted)):
        for name, analyzer in analyzers.items():
            faces = analyzer.analyze(rgb)
            for i in wanted[(source, frame)]:
                r = rows[i]
                best = min(faces, key=lambda f: np.linalg.norm(f.landmarks.mean(0) - (r["cx"], r["cy"])), default=None)
                if best is None or np.linalg.norm(best.landmarks.mean(0) - (r["cx"], r["cy"])) > 0.25 * r["size"]:
                    continue
                if best.mesh is not None:  # the stored smile: the learned model on the mesh and the frame
                    out[name][i] = {"kind": "mesh", "yaw": face_pose(best).yaw, **mesh_expression_ratios(best.mesh, best.eyes),
                                    "smile": face_expression(best, rgb)["smile"]}
                elif best.landmarks_ok:
                    out[name][i] = {"kind": "68", "yaw": face_pose(best).yaw, **expression_ratios(best.landmarks)}
    return out


def label_of(ratios: dict | None, mesh_ranges: dict = MESH_RANGES) -> str | None:
    """The stored label for measured ratios (None: face not found or no landmarks)."""
    if ratios is None:
        return None
    scores = scores_from_ratios(ratios, mesh_ranges if ratios["kind"] == "mesh" else _RANGES)
    if "smile" in ratios:  # a mesh face: the learned smile, as describe_face stores it
        scores["smile"] = ratios["smile"]
    return label_expression(scores)


def confusion(truth: list[str], pred: list[str | None]) -> tuple[str, float, int]:
    """Text confusion matrix (rows: hand label, columns: backend label), agreement and faces compared."""
    names = LABELS + ("brows_raised", "not found")
    counts = {t: {p: 0 for p in names} for t in LABELS}
    agree = n = 0
    for t, p in zip(truth, pred):
        if t not in LABELS:
            continue
        counts[t][p or "not found"] += 1
        if p is not None:
            n += 1
            agree += int(p == t)
    width = max(len(x) for x in names) + 1
    lines = ["hand \\ backend".ljust(13) + "".join(x.rjust(width) for x in names)]
    lines += [t.ljust(13) + "".join(str(counts[t][p]).rjust(width) for p in names) for t in LABELS if any(counts[t].values())]
    return "\n".join(lines), (agree / n if n else float("nan")), n


def auc(pos: list[float], neg: list[float]) -> float:
    """Probability that a mouth_open face's lip gap exceeds a smiling face's (ties count half)."""
    if not pos or not neg:
        return float("nan")
    p, q = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((p > q).sum() + 0.5 * (p == q).sum()) / (p.size * q.size))


def fit(ratios: list[dict | None], truth: list[str], split: list[str]) -> dict:
    """Mesh ranges (same ramp widths as shipped) whose midpoints maximise tune-split agreement."""
    idx = [i for i, r in enumerate(ratios) if r is not None and r["kind"] == "mesh" and split[i] == "tune" and truth[i] in LABELS]
    best = dict(MESH_RANGES)
    for name, grid in (("mouth_open", np.linspace(0.02, 0.5, 49)), ("smile", np.linspace(0.5, 1.3, 81))):
        lo, hi = MESH_RANGES[name]
        half = (hi - lo) / 2
        scores = []
        for mid in grid:
            trial = {**best, name: (mid - half, mid + half)}
            scores.append(np.mean([label_of(ratios[i], trial) == truth[i] for i in idx]))
        mid = grid[int(np.argmax(scores))]
        best[name] = (round(float(mid - half), 3), round(float(mid + half), 3))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="print mesh ranges fitted on the tune split")
    parser.add_argument("--backends", default="mediapipe,dlib")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "expression_agreement.txt")
    args = parser.parse_args()
    rows = read_set()
    truth = [r["label"] for r in rows]
    split = [r["split"] for r in rows]
    measured = measure(args.backends.split(","))
    report = [f"labelled faces: {sum(t in LABELS for t in truth)} "
              f"({', '.join(f'{lab} {truth.count(lab)}' for lab in LABELS)}); "
              f"tune {sum(s == 'tune' and t in LABELS for s, t in zip(split, truth))}, "
              f"test {sum(s == 'test' and t in LABELS for s, t in zip(split, truth))}"]
    for name, ratios in measured.items():
        pred = [label_of(r) for r in ratios]
        gap_open = [r["mouth_gap"] for r, t in zip(ratios, truth) if r and t == "mouth_open"]
        gap_smile = [r["mouth_gap"] for r, t in zip(ratios, truth) if r and t == "smile"]
        found = sum(p is not None for p, t in zip(pred, truth) if t in LABELS)
        report.append(f"\n== {name}: found {found} of {sum(t in LABELS for t in truth)} labelled faces; "
                      f"inner-lip gap separates mouth_open from smile with AUC {auc(gap_open, gap_smile):.2f}")
        for part in ("tune", "test"):
            sel = [i for i in range(len(rows)) if split[i] == part]
            text, agreement, n = confusion([truth[i] for i in sel], [pred[i] for i in sel])
            labelled = sum(truth[i] in LABELS for i in sel)
            report.append(f"-- {part}: agreement {agreement:.2f} on {n} faces found; "
                          f"{agreement * n / labelled:.2f} of all {labelled} labelled faces (a face not found counts as wrong)")
            report.append(text)
            for lo, hi in ((0, SIDE_YAW), (SIDE_YAW, 181)):
                part_yaw = [i for i in sel if ratios[i] and lo <= abs(ratios[i]["yaw"]) < hi]
                _, agreement, n = confusion([truth[i] for i in part_yaw], [pred[i] for i in part_yaw])
                report.append(f"   |yaw| {lo}-{hi if hi < 181 else 180} deg: agreement {agreement:.2f} on {n} faces")
        if args.fit and name == "mediapipe":
            report.append(f"fitted on tune: {fit(ratios, truth, split)}")
    emit(report, args.out)


if __name__ == "__main__":
    main()
