"""Coverage gaps between subsets A and B: pose (yaw x pitch) and expression bins.

All counting is vectorised numpy over one database read, so 100k faces take seconds.
A bin is a **gap for B** when A has at least ``min_count`` faces there and B has none ("missing")
or B's share of its faces in the bin is below ``thin_ratio`` times A's share ("thin"); and the
other way round for A. A set's **coverage** of the other is the fraction of the other's faces
that fall in bins where this set has at least one face.

Training flips faces horizontally (half of them, at random), so a left profile of B also teaches the
model a right profile: a gap is **filled by flipping** when B's faces with their yaw mirrored, mixed
half and half with the unflipped ones as training sees them, are no longer missing or thin there.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_YAW_EDGES = (-60.0, -40.0, -25.0, -10.0, 10.0, 25.0, 40.0, 60.0)
DEFAULT_PITCH_EDGES = (-25.0, -10.0, 10.0, 25.0)
GAP_VIEW_PREFIX = "gap: "


UNKNOWN = "unknown"  # the expression bin of faces whose landmarks (and so expression) could not be measured


def bin_labels(edges: tuple[float, ...]) -> list[str]:
    """Readable labels of the open-ended bins made by these edges ('<-60', '-60..-40', ..., '>60')."""
    fmt = lambda v: f"{v:g}"
    inner = [f"{fmt(a)}..{fmt(b)}" for a, b in zip(edges[:-1], edges[1:])]
    return [f"<{fmt(edges[0])}", *inner, f">{fmt(edges[-1])}"]


def bin_range(edges: tuple[float, ...], index: int) -> tuple[float | None, float | None]:
    """(low, high) of a bin; None for the open ends."""
    low = edges[index - 1] if index > 0 else None
    high = edges[index] if index < len(edges) else None
    return low, high


def histogram(yaw: np.ndarray, pitch: np.ndarray, expr_index: np.ndarray, yaw_edges, pitch_edges, n_expr: int) -> np.ndarray:
    """Counts of shape (n_expr, pitch bins, yaw bins)."""
    yi = np.digitize(yaw, yaw_edges)
    pi = np.digitize(pitch, pitch_edges)
    ny, npitch = len(yaw_edges) + 1, len(pitch_edges) + 1
    flat = (expr_index * npitch + pi) * ny + yi
    return np.bincount(flat, minlength=n_expr * npitch * ny).reshape(n_expr, npitch, ny)


def shortfall(have: np.ndarray, lack: np.ndarray, min_count: int = 3, thin_ratio: float = 0.25) -> np.ndarray:
    """Per bin: 0 fine, 1 missing (``have`` has >= min_count faces, ``lack`` none), 2 thin (``lack``'s share too small)."""
    have, lack = np.asarray(have, dtype=np.float64), np.asarray(lack, dtype=np.float64)
    share_h = have / max(have.sum(), 1.0)
    share_l = lack / max(lack.sum(), 1.0)
    needed = have >= min_count
    out = np.zeros(have.shape, dtype=np.int8)
    out[needed & (lack == 0)] = 1
    out[needed & (lack > 0) & (share_l < thin_ratio * share_h)] = 2
    return out


def flip_fills(have: np.ndarray, lack: np.ndarray, lack_mirrored: np.ndarray, min_count: int = 3,
               thin_ratio: float = 0.25) -> np.ndarray:
    """Bins short in ``lack`` that its horizontally flipped faces (half of training's samples) would fill."""
    short = shortfall(have, lack, min_count, thin_ratio) > 0
    trained = (np.asarray(lack, dtype=np.float64) + np.asarray(lack_mirrored, dtype=np.float64)) / 2.0
    return short & (shortfall(have, trained, min_count, thin_ratio) == 0)


@dataclass
class GapReport:
    """Counts per bin for A and B (as seen and yaw-mirrored), the gap bins each way and coverage scores."""

    yaw_edges: tuple[float, ...]
    pitch_edges: tuple[float, ...]
    expressions: list[str]
    counts_a: np.ndarray
    counts_b: np.ndarray
    gaps: list[dict[str, Any]] = field(default_factory=list)
    coverage: dict[str, float] = field(default_factory=dict)
    mirrored_a: np.ndarray | None = None
    mirrored_b: np.ndarray | None = None
    min_count: int = 3
    thin_ratio: float = 0.25
    left_out: dict[str, int] = field(default_factory=dict)  # faces not counted, by reason

    def counts(self, name: str, mirrored: bool = False) -> np.ndarray:
        """Counts of subset ``name`` ('A'/'B'), or of its faces with yaw mirrored."""
        if mirrored:
            return self.mirrored_a if name == "A" else self.mirrored_b
        return self.counts_a if name == "A" else self.counts_b

    def status(self, lacking: str, expression: int | None = None) -> np.ndarray:
        """(pitch, yaw) strings for one set: '' fine, 'missing', 'thin', or 'flip' (its flipped faces fill it)."""
        have = "A" if lacking == "B" else "B"
        pick = (lambda a: a.sum(0)) if expression is None else (lambda a: a[expression])
        h, l, m = pick(self.counts(have)), pick(self.counts(lacking)), pick(self.counts(lacking, mirrored=True))
        kind = shortfall(h, l, self.min_count, self.thin_ratio)
        out = np.array(["", "missing", "thin"], dtype=object)[kind]
        out[flip_fills(h, l, m, self.min_count, self.thin_ratio)] = "flip"
        return out

    def to_json(self) -> dict[str, Any]:
        """Plain-data form of the report."""
        return {
            "yaw_bins": bin_labels(self.yaw_edges),
            "pitch_bins": bin_labels(self.pitch_edges),
            "expressions": self.expressions,
            "counts": {"A": self.counts_a.tolist(), "B": self.counts_b.tolist()},
            "mirrored_counts": {"A": self.counts("A", True).tolist(), "B": self.counts("B", True).tolist()},
            "totals": {"A": int(self.counts_a.sum()), "B": int(self.counts_b.sum())},
            "coverage": self.coverage,
            "gaps": self.gaps,
            "left_out": self.left_out,
        }


def compute_gaps(
    subset: np.ndarray,
    yaw: np.ndarray,
    pitch: np.ndarray,
    expression: np.ndarray | None = None,
    yaw_edges: tuple[float, ...] = DEFAULT_YAW_EDGES,
    pitch_edges: tuple[float, ...] = DEFAULT_PITCH_EDGES,
    min_count: int = 3,
    thin_ratio: float = 0.25,
) -> GapReport:
    """Bin A and B faces and list the bins where one set lacks what the other has."""
    subset = np.asarray(subset)
    yaw = np.asarray(yaw, dtype=np.float64)
    pitch = np.asarray(pitch, dtype=np.float64)
    if expression is None:
        labels, expr_index = ["all"], np.zeros(len(subset), dtype=np.int64)
    else:
        labels_arr, expr_index = np.unique(np.asarray(expression, dtype=str), return_inverse=True)
        labels = labels_arr.tolist()
    hists, mirrored = {}, {}
    for name in ("A", "B"):
        m = subset == name
        hists[name] = histogram(yaw[m], pitch[m], expr_index[m], yaw_edges, pitch_edges, len(labels))
        mirrored[name] = histogram(-yaw[m], pitch[m], expr_index[m], yaw_edges, pitch_edges, len(labels))
    report = GapReport(tuple(yaw_edges), tuple(pitch_edges), labels, hists["A"], hists["B"], mirrored_a=mirrored["A"],
                       mirrored_b=mirrored["B"], min_count=min_count, thin_ratio=thin_ratio)
    ylab, plab = bin_labels(tuple(yaw_edges)), bin_labels(tuple(pitch_edges))
    for have, lack in (("A", "B"), ("B", "A")):
        h, l, lm = hists[have], hists[lack], mirrored[lack]
        kind = shortfall(h, l, min_count, thin_ratio)
        by_flip = flip_fills(h, l, lm, min_count, thin_ratio)
        for e, p, y in zip(*np.nonzero(kind)):
            report.gaps.append({
                "lacking": lack, "kind": ("missing", "thin")[kind[e, p, y] - 1], "expression": labels[e],
                "yaw": ylab[y], "pitch": plab[p], "flip_fills": bool(by_flip[e, p, y]),
                "yaw_range": bin_range(tuple(yaw_edges), int(y)), "pitch_range": bin_range(tuple(pitch_edges), int(p)),
                "count_" + have: int(h[e, p, y]), "count_" + lack: int(l[e, p, y]),
            })
        report.coverage[f"{lack}_covers_{have}"] = float(h[l > 0].sum() / max(h.sum(), 1))
        report.coverage[f"{lack}_covers_{have}_flipped"] = float(h[(l + lm) > 0].sum() / max(h.sum(), 1))
    report.gaps.sort(key=lambda g: -g.get("count_" + ("A" if g["lacking"] == "B" else "B"), 0))
    return report


def plot_heatmaps(report: GapReport, path: Path) -> Path:
    """PNG with A, B and (B share - A share) heatmaps side by side, one row per expression."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(report.expressions) + (1 if len(report.expressions) > 1 else 0)
    fig, axes = plt.subplots(rows, 3, figsize=(15, 3.6 * rows), squeeze=False)
    ylab, plab = bin_labels(report.yaw_edges), bin_labels(report.pitch_edges)
    grids = [("all expressions", report.counts_a.sum(0), report.counts_b.sum(0))] if rows > len(report.expressions) else []
    grids += [(e, report.counts_a[i], report.counts_b[i]) for i, e in enumerate(report.expressions)]
    ta, tb = max(report.counts_a.sum(), 1), max(report.counts_b.sum(), 1)
    for r, (title, a, b) in enumerate(grids):
        diff = b / tb - a / ta
        lim = max(float(np.abs(diff).max()), 1e-6)
        for c, (name, grid, cmap, kw) in enumerate((
            ("A", a, "viridis", {}), ("B", b, "viridis", {}),
            ("B share - A share (red: B lacks)", diff, "RdBu", {"vmin": -lim, "vmax": lim}),
        )):
            ax = axes[r][c]
            im = ax.imshow(grid[::-1], cmap=cmap, aspect="auto", **kw)
            ax.set_xticks(range(len(ylab)), ylab, rotation=45, fontsize=7)
            ax.set_yticks(range(len(plab)), plab[::-1], fontsize=7)
            ax.set_xlabel("yaw (deg)")
            ax.set_ylabel("pitch (deg)")
            ax.set_title(f"{name} — {title}", fontsize=9)
            if c < 2:
                for (yy, xx), v in np.ndenumerate(grid[::-1]):
                    ax.text(xx, yy, str(int(v)), ha="center", va="center", color="w", fontsize=7)
            fig.colorbar(im, ax=ax)
    fig.suptitle(f"pose coverage — B covers {report.coverage.get('B_covers_A', 0):.0%} of A, "
                 f"A covers {report.coverage.get('A_covers_B', 0):.0%} of B")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def cell_filter(subsets: str | list[str] | None, yaw_range: tuple[float | None, float | None],
                pitch_range: tuple[float | None, float | None], expression: str | None = None) -> Any:
    """ViewExpression matching the faces of these subsets in one yaw x pitch bin (and expression label)."""
    from fiftyone import ViewField as F

    names = [subsets] if isinstance(subsets, str) else list(subsets or [])
    expr = F("subset").is_in(names) if names else F("yaw").exists()
    for fname, (low, high) in (("yaw", yaw_range), ("pitch", pitch_range)):
        if low is not None:
            expr = expr & (F(fname) >= low)
        if high is not None:
            expr = expr & (F(fname) < high)
    if expression is not None:  # faces without landmarks have no expression: their bin is "unknown"
        expr = expr & (F("expression.label") == (None if expression == UNKNOWN else expression))
    return expr


def _gap_expression(gap: dict[str, Any], by_expression: bool):
    have = "A" if gap["lacking"] == "B" else "B"
    return cell_filter(have, gap["yaw_range"], gap["pitch_range"], gap["expression"] if by_expression else None)


def dataset_gaps(
    name: str,
    yaw_edges: tuple[float, ...] = DEFAULT_YAW_EDGES,
    pitch_edges: tuple[float, ...] = DEFAULT_PITCH_EDGES,
    by_expression: bool = False,
    min_count: int = 3,
    thin_ratio: float = 0.25,
    out_dir: Path | None = None,
    max_views: int = 10,
) -> tuple[GapReport, dict[str, Path], list[str]]:
    """Gap report of a dataset, written as JSON + heatmap PNG, with saved views of the gap faces."""
    from curate.dataset.store import load_dataset, media_dir
    from curate.ops.identity import usable_faces

    ds = load_dataset(name)
    usable, left = usable_faces(ds)  # no non-faces, unsure or other people in the coverage
    fields = ["subset", "yaw", "pitch"] + (["expression.label"] if by_expression else [])
    values = usable.values(fields)
    report = compute_gaps(
        np.asarray(values[0], dtype=object), np.asarray(values[1], dtype=float), np.asarray(values[2], dtype=float),
        np.asarray([e or UNKNOWN for e in values[3]], dtype=object) if by_expression else None,
        tuple(yaw_edges), tuple(pitch_edges), min_count, thin_ratio,
    )
    report.left_out = left
    out_dir = Path(out_dir) if out_dir else media_dir(ds).parent / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{name}-gaps.json", "png": out_dir / f"{name}-gaps.png"}
    paths["json"].write_text(json.dumps(report.to_json(), indent=2))
    plot_heatmaps(report, paths["png"])

    for old in ds.list_saved_views():
        if old.startswith(GAP_VIEW_PREFIX):
            ds.delete_saved_view(old)
    saved = []
    for lacking in ("B", "A"):
        mine = [g for g in report.gaps if g["lacking"] == lacking]
        if not mine:
            continue
        union = None
        for g in mine:
            e = _gap_expression(g, by_expression)
            union = e if union is None else (union | e)
        view_name = f"{GAP_VIEW_PREFIX}{lacking} lacks (all {len(mine)} bins)"
        ds.save_view(view_name, usable.match(union), overwrite=True)
        saved.append(view_name)
        for g in mine[:max_views]:
            label = f"{GAP_VIEW_PREFIX}{lacking} lacks yaw {g['yaw']} pitch {g['pitch']}" + (f" {g['expression']}" if by_expression else "")
            ds.save_view(label, usable.match(_gap_expression(g, by_expression)), overwrite=True)
            saved.append(label)
    return report, paths, saved
