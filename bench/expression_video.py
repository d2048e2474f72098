"""Expression labels on real video faces against hand labels (issue 26).

    .venv/bin/python bench/expression_video.py [--out bench/out/expression_video.txt]

Hand labels: ``bench/labels/expressions_video.json`` (by eye from the aligned crops of the ``gt_*`` datasets;
mouth neutral/smile/mouth_open/unsure, eyes open/closed/unsure, view). Split by video: ``tune`` =
short_hamilton_clip + single_performer, ``test`` = classroom + crowd. Every choice below (thresholds, limits,
weights) is made on tune only; test is only reported.

Per face the stored label and scores are read from the dataset; the raw mesh ratios are recomputed from the
stored mesh (``mesh`` + ``mesh_z``) and the iris eye openness from the crop (as extraction does). Track
statistics (resting mouth gap, usual eye openness) use every face of the track, labelled or not.
"""
from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections import Counter, defaultdict
from io import BytesIO
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import emit  # noqa: E402

from curate.analysis.expression import iris_landmarker  # noqa: E402
from curate.core.expression import mesh_expression_ratios  # noqa: E402
from curate.dataset.store import load_dataset, read_columns  # noqa: E402

ROOT = Path(__file__).resolve().parent
LABELS = ROOT / "labels" / "expressions_video.json"
VIDEOS = ("short_hamilton_clip", "single_performer", "classroom", "crowd")
MOUTH = ("neutral", "smile", "mouth_open")
YAW_BINS = ((0, 20), (20, 40), (40, 181))


def _dec(b):
    return None if b is None else np.load(BytesIO(zlib.decompress(b)), allow_pickle=False)


def load_faces(cache: str | None = None) -> dict[str, dict]:
    """Every face with a mesh in the four datasets: stored label/scores, pose, recomputed ratios. With ``cache``
    (a pickle of this function's per-face dicts before the track statistics) the datasets are not read."""
    from PIL import Image

    if cache and Path(cache).exists():
        import pickle

        faces = pickle.loads(Path(cache).read_bytes())
        return _track_stats(faces)

    iris = iris_landmarker()
    faces = {}
    for video in VIDEOS:
        ds = load_dataset(f"gt_{video}")
        cols = read_columns(ds, ["face_key", "filepath", "frame", "track", "yaw", "pitch", "smile", "mouth_open",
                                 "eyes_closed", "brows_raised", "mesh", "mesh_z"])
        labels = dict(zip(ds.values("face_key"), ds.values("expression.label")))
        for i, key in enumerate(cols["face_key"]):
            mesh, z = _dec(cols["mesh"][i]), _dec(cols["mesh_z"][i])
            if mesh is None or z is None or labels.get(key) is None:
                continue
            pts = np.column_stack([mesh.reshape(-1, 2) * 256, z.ravel() * 256]).astype(np.float64)
            crop = np.asarray(Image.open(cols["filepath"][i]).convert("RGB"))
            r = mesh_expression_ratios(pts, iris.eyes(crop, pts))
            faces[key] = {"video": video, "track": cols["track"][i], "frame": cols["frame"][i],
                          "yaw": float(cols["yaw"][i]), "pitch": float(cols["pitch"][i]), "label": labels[key],
                          **{s: float(cols[s][i]) for s in ("smile", "mouth_open", "eyes_closed", "brows_raised")},
                          **r}
    if cache:
        import pickle

        Path(cache).write_bytes(pickle.dumps(faces))
    return _track_stats(faces)


def _track_stats(faces: dict[str, dict]) -> dict[str, dict]:
    by_track = defaultdict(list)
    for f in faces.values():
        by_track[(f["video"], f["track"])].append(f)
    for fs in by_track.values():  # the track's own resting levels
        gap20 = float(np.percentile([f["mouth_gap"] for f in fs], 20))
        eye_med = float(np.median([f["eye_aspect"] for f in fs]))
        for f in fs:
            f["gap_rest"], f["eye_med"] = gap20, eye_med
            f["gap_rel"] = f["mouth_gap"] - gap20
            f["eye_rel"] = f["eye_aspect"] / eye_med
    return faces


def stored_mouth(label: str) -> str:
    """The stored label as a mouth label: eyes_closed / brows_raised faces had smile and mouth_open under
    their thresholds (checked first), so their mouth is neutral."""
    return label if label in MOUTH else "neutral"


def agreement(truth, pred) -> tuple[float, int, int]:
    """Agreement over the faces a rule judged (pred != "unsure"); also (judged, all)."""
    pairs = [(t, p) for t, p in zip(truth, pred) if p != "unsure"]
    if not pairs:
        return float("nan"), 0, len(truth)
    return float(np.mean([t == p for t, p in pairs])), len(pairs), len(truth)


def fmt(name: str, truth, pred) -> str:
    a, n, total = agreement(truth, pred)
    return f"  {name:<58s} agreement {a:.3f}  coverage {n}/{total} = {n / max(total, 1):.2f}"


def confusion(truth, pred) -> list[str]:
    cols = MOUTH + ("unsure",)
    lines = ["    hand \\ rule  " + " ".join(f"{c:>10s}" for c in cols)]
    c = Counter(zip(truth, pred))
    for t in MOUTH:
        lines.append(f"    {t:<13s}" + " ".join(f"{c[(t, p)]:>10d}" for p in cols))
    return lines


# --- rules -----------------------------------------------------------------------------------------------------

def rule_thresholds(f, smile_t: float, open_t: float, gap_key: str = "mouth_open") -> str:
    if f["smile"] >= smile_t:
        return "smile"
    return "mouth_open" if f[gap_key] >= open_t else "neutral"


def logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return float(np.log(p / (1 - p)))


SMILE_LR_FEATURES = ("smile_logit", "mouth_gap", "gap_rel", "mouth_width", "corner_lift")


def lr_features(f) -> np.ndarray:
    return np.array([logit(f["smile"]), f["mouth_gap"], f["gap_rel"], f["mouth_width"], f["corner_lift"]])


def fit_lr(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 3000) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Binary logistic regression (standardised features, L2), gradient descent; returns (w, b, mean, std)."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sd
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        g = p - y
        w -= 0.1 * (z.T @ g / len(y) + l2 * w / len(y))
        b -= 0.1 * g.mean()
    return w, b, mu, sd


def lr_prob(model, f) -> float:
    w, b, mu, sd = model
    return float(1 / (1 + np.exp(-(((lr_features(f) - mu) / sd) @ w + b))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "out" / "expression_video.txt"))
    ap.add_argument("--cache", default=None, help="pickle of the per-face measures: read if present, else written")
    args = ap.parse_args()
    hand = json.loads(LABELS.read_text())["faces"]
    faces = load_faces(args.cache)
    rows = []
    for h in hand:
        f = faces.get(h["face_key"])
        if f is None:
            continue
        rows.append({**f, "hand_mouth": h["mouth"], "hand_eyes": h["eyes"], "view": h["view"], "split": h["split"]})
    split = {s: [r for r in rows if r["split"] == s] for s in ("tune", "test")}
    mouth_rows = {s: [r for r in v if r["hand_mouth"] != "unsure"] for s, v in split.items()}
    out: list[str] = []
    out.append(f"hand labels: {len(hand)} faces ({LABELS.relative_to(ROOT.parent)}); found in the datasets: {len(rows)}")
    for s in ("tune", "test"):
        c = Counter((r["video"], r["hand_mouth"]) for r in split[s])
        e = Counter((r["video"], r["hand_eyes"]) for r in split[s])
        for v in sorted({r["video"] for r in split[s]}):
            out.append(f"  {s:<5s} {v:<20s} mouth " + ", ".join(f"{k}={c[(v, k)]}" for k in (*MOUTH, "unsure"))
                       + " | eyes " + ", ".join(f"{k}={e[(v, k)]}" for k in ("open", "closed", "unsure"))
                       + f" | tracks {len({r['track'] for r in split[s] if r['video'] == v})}")

    # ---- baseline --------------------------------------------------------------------------------------------
    out.append("\n== baseline: the stored label (eyes_closed/brows_raised counted as their mouth label, neutral)")
    for s in ("tune", "test"):
        R = mouth_rows[s]
        truth = [r["hand_mouth"] for r in R]
        pred = [stored_mouth(r["label"]) for r in R]
        out.append(f"[{s}]")
        out.append(fmt("stored label", truth, pred))
        other = Counter(r["label"] for r in R if r["label"] not in MOUTH)
        out.append(f"    faces whose stored label is not a mouth label: {dict(other) or 0}")
        out += confusion(truth, pred)
        for lo, hi in YAW_BINS:
            sub = [(t, p) for t, p, r in zip(truth, pred, R) if lo <= abs(r["yaw"]) < hi]
            if sub:
                out.append(fmt(f"|yaw| {lo}-{min(hi, 90)}", [t for t, _ in sub], [p for _, p in sub]))
        for view in ("frontal", "three_quarter", "profile"):
            sub = [(t, p) for t, p, r in zip(truth, pred, R) if r["view"] == view]
            if sub:
                out.append(fmt(f"view {view} (hand)", [t for t, _ in sub], [p for _, p in sub]))

    # ---- eyes ------------------------------------------------------------------------------------------------
    def pr(R, closed_fn):
        E = [r for r in R if r["hand_eyes"] != "unsure"]
        tp = sum(r["hand_eyes"] == "closed" and closed_fn(r) for r in E)
        fp = sum(r["hand_eyes"] == "open" and closed_fn(r) for r in E)
        fn = sum(r["hand_eyes"] == "closed" and not closed_fn(r) for r in E)
        p = tp / (tp + fp) if tp + fp else float("nan")
        rc = tp / (tp + fn) if tp + fn else float("nan")
        return f"precision {p:.2f} ({tp}/{tp + fp})  recall {rc:.2f} ({tp}/{tp + fn})  [open {sum(r['hand_eyes'] == 'open' for r in E)}, closed {tp + fn}]"

    out.append("\n== eyes closed (faces with a hand eye label open/closed)")
    # choose on tune: eye_rel (eye openness / track median) threshold maximising F1; absolute eye_aspect too
    tune_e = [r for r in split["tune"] if r["hand_eyes"] != "unsure"]

    def best_thr(key, grid):
        best = None
        for t in grid:
            tp = sum(r["hand_eyes"] == "closed" and r[key] <= t for r in tune_e)
            fp = sum(r["hand_eyes"] == "open" and r[key] <= t for r in tune_e)
            fn = sum(r["hand_eyes"] == "closed" and r[key] > t for r in tune_e)
            f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0
            if best is None or f1 > best[0] + 1e-9:
                best = (f1, t)
        return best[1]

    eye_abs_t = best_thr("eye_aspect", np.round(np.arange(0.08, 0.26, 0.01), 2))
    eye_rel_t = best_thr("eye_rel", np.round(np.arange(0.40, 0.90, 0.025), 3))
    for s in ("tune", "test"):
        out.append(f"[{s}]")
        out.append(f"  stored eyes_closed score >= 0.5:               " + pr(split[s], lambda r: r["eyes_closed"] >= 0.5))
        out.append(f"  stored label == eyes_closed:                   " + pr(split[s], lambda r: r["label"] == "eyes_closed"))
        out.append(f"  b. iris eye aspect <= {eye_abs_t:.2f} (tune):            " + pr(split[s], lambda r: r["eye_aspect"] <= eye_abs_t))
        out.append(f"  c. eye aspect / track median <= {eye_rel_t:.3f} (tune):  " + pr(split[s], lambda r: r["eye_rel"] <= eye_rel_t))

    # ---- options ---------------------------------------------------------------------------------------------
    out.append("\n== options (every number chosen on tune; coverage = share of the hand-judged faces a rule labels)")
    results = {}

    def report(name, fn):
        results[name] = fn
        for s in ("tune", "test"):
            R = mouth_rows[s]
            out.append(fmt(f"[{s}] {name}", [r["hand_mouth"] for r in R], [fn(r) for r in R]))

    def grid_best(make, grid):
        R = mouth_rows["tune"]
        best = None
        for params in grid:
            fn = make(*params)
            a = np.mean([fn(r) == r["hand_mouth"] for r in R])
            if best is None or a > best[0] + 1e-9:
                best = (a, params)
        return best[1]

    report("baseline stored label", lambda r: stored_mouth(r["label"]))

    # b. thresholds of the stored scores
    sm_grid = np.round(np.arange(0.1, 0.96, 0.05), 2)
    mo_grid = np.round(np.arange(0.0, 1.01, 0.1), 2)
    st, ot = grid_best(lambda a, b: (lambda r: rule_thresholds(r, a, b)), [(a, b) for a in sm_grid for b in mo_grid])
    report(f"b. stored scores, smile >= {st}, mouth_open >= {ot}", lambda r, st=st, ot=ot: rule_thresholds(r, st, ot))

    # c. per-track normalised mouth gap (gap minus the track's 20th percentile)
    gr_grid = np.round(np.arange(0.0, 0.12, 0.005), 3)
    st2, gt = grid_best(lambda a, b: (lambda r: rule_thresholds(r, a, b, "gap_rel")), [(a, b) for a in sm_grid for b in gr_grid])
    report(f"c. smile >= {st2}, gap - track p20 gap >= {gt}", lambda r, a=st2, b=gt: rule_thresholds(r, a, b, "gap_rel"))
    gap_grid = np.round(np.arange(0.0, 0.15, 0.005), 3)
    st3, gt3 = grid_best(lambda a, b: (lambda r: rule_thresholds(r, a, b, "mouth_gap")), [(a, b) for a in sm_grid for b in gap_grid])
    report(f"c'. smile >= {st3}, raw mouth gap >= {gt3} (no track)", lambda r, a=st3, b=gt3: rule_thresholds(r, a, b, "mouth_gap"))

    # d. logistic regression smile vs not on smile logit + gap + width + lift (fitted on tune), then the gap rule
    R = mouth_rows["tune"]
    x = np.stack([lr_features(r) for r in R])
    y = np.array([r["hand_mouth"] == "smile" for r in R], float)
    model = fit_lr(x, y)
    w, b, mu, sd = model
    pt, gt4 = grid_best(lambda a, g: (lambda r: "smile" if lr_prob(model, r) >= a else ("mouth_open" if r["gap_rel"] >= g else "neutral")),
                        [(a, g) for a in np.round(np.arange(0.2, 0.81, 0.05), 2) for g in gr_grid])

    def rule_d(r, pt=pt, gt4=gt4):
        return "smile" if lr_prob(model, r) >= pt else ("mouth_open" if r["gap_rel"] >= gt4 else "neutral")

    report(f"d. LR P(smile) >= {pt}, else gap - track p20 >= {gt4}", rule_d)
    raw_w = w / sd
    raw_b = b - float((mu / sd) @ w)
    out.append("     LR weights on raw features (z = w.x + b): "
               + ", ".join(f"{n} {v:+.3f}" for n, v in zip(SMILE_LR_FEATURES, raw_w)) + f", bias {raw_b:+.3f}")

    # a. |yaw| limit -> unsure, on top of the baseline, b and d: choose on tune the largest limit whose judged
    # agreement is best (ties: the larger limit, i.e. more coverage)
    def with_yaw(fn, lim):
        return lambda r: "unsure" if abs(r["yaw"]) > lim else fn(r)

    for name, fn in [("baseline", results["baseline stored label"]),
                     ("b", results[next(k for k in results if k.startswith("b."))]),
                     ("c", results[next(k for k in results if k.startswith("c."))]),
                     ("d", rule_d)]:
        best = None
        for lim in range(20, 95, 5):
            a, n, total = agreement([r["hand_mouth"] for r in R], [with_yaw(fn, lim)(r) for r in R])
            score = a if n >= 0.5 * total else -1
            if best is None or score >= best[0] - 1e-9:
                best = (score, lim)
        report(f"a. {name} + unsure beyond |yaw| {best[1]} (tune)", with_yaw(fn, best[1]))
        for lim in (30, 45, 60):
            report(f"   {name} + unsure beyond |yaw| {lim} (fixed)", with_yaw(fn, lim))

    # per-yaw agreement of d (how far each label holds)
    out.append("\n== d per |yaw| bin and per hand label (recall), to say up to which yaw each label holds")
    for s in ("tune", "test"):
        Rs = mouth_rows[s]
        for lo, hi in ((0, 20), (20, 40), (40, 60), (60, 181)):
            sub = [r for r in Rs if lo <= abs(r["yaw"]) < hi]
            if not sub:
                continue
            per = []
            for lab in MOUTH:
                L = [r for r in sub if r["hand_mouth"] == lab]
                if L:
                    per.append(f"{lab} {np.mean([rule_d(r) == lab for r in L]):.2f} ({len(L)})")
            base = np.mean([stored_mouth(r["label"]) == r["hand_mouth"] for r in sub])
            out.append(f"  [{s}] |yaw| {lo}-{min(hi, 90)}: d {np.mean([rule_d(r) == r['hand_mouth'] for r in sub]):.2f}, "
                       f"baseline {base:.2f} of {len(sub)}; recall " + "; ".join(per))
    # diagnostics (nothing chosen here): how well single features separate the classes, per split
    def auc(pos, neg):
        pos, neg = np.asarray(pos), np.asarray(neg)
        if not len(pos) or not len(neg):
            return float("nan")
        return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg)))

    out.append("\n== diagnostics: AUC of single features (not used for any choice)")
    for s in ("tune", "test"):
        Rs = mouth_rows[s]
        sm = [r for r in Rs if r["hand_mouth"] == "smile"]
        ns = [r for r in Rs if r["hand_mouth"] != "smile"]
        op = [r for r in Rs if r["hand_mouth"] == "mouth_open"]
        ne = [r for r in Rs if r["hand_mouth"] == "neutral"]
        fr = lambda L: [r for r in L if abs(r["yaw"]) < 40]
        out.append(f"  [{s}] smile vs rest: stored smile {auc([r['smile'] for r in sm], [r['smile'] for r in ns]):.2f}"
                   f" (|yaw|<40: {auc([r['smile'] for r in fr(sm)], [r['smile'] for r in fr(ns)]):.2f}),"
                   f" mouth_width {auc([r['mouth_width'] for r in sm], [r['mouth_width'] for r in ns]):.2f}")
        out.append(f"  [{s}] mouth_open vs neutral: mouth gap {auc([r['mouth_gap'] for r in op], [r['mouth_gap'] for r in ne]):.2f},"
                   f" gap - track p20 {auc([r['gap_rel'] for r in op], [r['gap_rel'] for r in ne]):.2f}"
                   f"  (open {len(op)}, neutral {len(ne)})")
    emit(out, Path(args.out))


if __name__ == "__main__":
    main()
