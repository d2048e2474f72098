"""Coverage gaps between subsets A and B: pose (yaw x pitch) and expression bins.

All counting is vectorised numpy over one database read, so 100k faces take seconds.
A bin is a **gap for B** when A has at least ``min_count`` faces there and B has none ("missing")
or B's share of its faces in the bin is below ``thin_ratio`` times A's share ("thin"); and the
other way round for A. A set's **coverage** of the other is the fraction of the other's faces
that fall in bins where this set has at least one face.
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


@dataclass
class GapReport:
    """Counts per bin for A and B, the gap bins each way and coverage scores."""

    yaw_edges: tuple[float, ...]
    pitch_edges: tuple[float, ...]
    expressions: list[str]
    counts_a: np.ndarray
    counts_b: np.ndarray
    gaps: list[dict[str, Any]] = field(default_factory=list)
    coverage: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain-data form of the report."""
        return {
            "yaw_bins": bin_labels(self.yaw_edges),
            "pitch_bins": bin_labels(self.pitch_edges),
            "expressions": self.expressions,
            "counts": {"A": self.counts_a.tolist(), "B": self.counts_b.tolist()},
            "totals": {"A": int(self.counts_a.sum()), "B": int(self.counts_b.sum())},
            "coverage": self.coverage,
            "gaps": self.gaps,
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
    hists = {}
    for name in ("A", "B"):
        m = subset == name
        hists[name] = histogram(yaw[m], pitch[m], expr_index[m], yaw_edges, pitch_edges, len(labels))
    report = GapReport(tuple(yaw_edges), tuple(pitch_edges), labels, hists["A"], hists["B"])
    ylab, plab = bin_labels(tuple(yaw_edges)), bin_labels(tuple(pitch_edges))
    for have, lack in (("A", "B"), ("B", "A")):
        h, l = hists[have], hists[lack]
        share_h = h / max(h.sum(), 1)
        share_l = l / max(l.sum(), 1)
        missing = (h >= min_count) & (l == 0)
        thin = (h >= min_count) & (l > 0) & (share_l < thin_ratio * share_h)
        for kind, mask in (("missing", missing), ("thin", thin)):
            for e, p, y in zip(*np.nonzero(mask)):
                report.gaps.append({
                    "lacking": lack, "kind": kind, "expression": labels[e], "yaw": ylab[y], "pitch": plab[p],
                    "yaw_range": bin_range(tuple(yaw_edges), int(y)), "pitch_range": bin_range(tuple(pitch_edges), int(p)),
                    "count_" + have: int(h[e, p, y]), "count_" + lack: int(l[e, p, y]),
                })
        covered = (l > 0)
        report.coverage[f"{lack}_covers_{have}"] = float(h[covered].sum() / max(h.sum(), 1))
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


def _gap_expression(gap: dict[str, Any], by_expression: bool):
    from fiftyone import ViewField as F

    expr = F("subset") == ("A" if gap["lacking"] == "B" else "B")
    for fname, (low, high) in (("yaw", gap["yaw_range"]), ("pitch", gap["pitch_range"])):
        if low is not None:
            expr = expr & (F(fname) >= low)
        if high is not None:
            expr = expr & (F(fname) < high)
    if by_expression:  # faces without landmarks have no expression: their bin is "unknown"
        label = None if gap["expression"] == UNKNOWN else gap["expression"]
        expr = expr & (F("expression.label") == label)
    return expr


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
    from curate.store import load_dataset, media_dir

    ds = load_dataset(name)
    fields = ["subset", "yaw", "pitch"] + (["expression.label"] if by_expression else [])
    values = ds.values(fields)
    report = compute_gaps(
        np.asarray(values[0], dtype=object), np.asarray(values[1], dtype=float), np.asarray(values[2], dtype=float),
        np.asarray([e or UNKNOWN for e in values[3]], dtype=object) if by_expression else None,
        tuple(yaw_edges), tuple(pitch_edges), min_count, thin_ratio,
    )
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
        ds.save_view(view_name, ds.match(union), overwrite=True)
        saved.append(view_name)
        for g in mine[:max_views]:
            label = f"{GAP_VIEW_PREFIX}{lacking} lacks yaw {g['yaw']} pitch {g['pitch']}" + (f" {g['expression']}" if by_expression else "")
            ds.save_view(label, ds.match(_gap_expression(g, by_expression)), overwrite=True)
            saved.append(label)
    return report, paths, saved
