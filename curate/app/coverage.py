"""The App workbench's coverage: the A/B coverage grids of a view, its scores and figure, and the faces of a cell.

The FiftyOne panel and operators in ``curate/app/plugin`` are thin shells over these functions, so
everything here runs (and is tested) without the App.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from curate.dataset.subsets import SUBSETS
from curate.ops.gaps import (
    DEFAULT_PITCH_EDGES,
    DEFAULT_YAW_EDGES,
    UNKNOWN,
    GapReport,
    bin_labels,
    bin_range,
    cell_filter,
    compute_gaps,
)

ALL_EXPRESSIONS = "all"
MARKS = {"missing": ("#e5484d", "✗", "missing: the other set has faces here, this one none"),
         "thin": ("#f5a524", "↓", "thin: this set's share is under a quarter of the other's"),
         "flip": ("#3e9bff", "⇋", "filled by flipping: this set's mirrored faces cover it in training")}


def parse_edges(text: str | list[float] | tuple[float, ...] | None, default: tuple[float, ...]) -> tuple[float, ...]:
    """Bin edges from '-60,-40,...' (or a list); empty gives the default; raises ValueError unless increasing."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return tuple(default)
    try:
        edges = tuple(float(v) for v in (text.replace(" ", "").split(",") if isinstance(text, str) else text))
    except ValueError:
        raise ValueError(f"comma-separated numbers expected, got {text!r}") from None
    if not edges or list(edges) != sorted(set(edges)):
        raise ValueError(f"bin edges must be increasing, got {text!r}")
    return edges


def view_coverage(view: Any, yaw_edges: tuple[float, ...] = DEFAULT_YAW_EDGES,
                  pitch_edges: tuple[float, ...] = DEFAULT_PITCH_EDGES, min_count: int = 3,
                  thin_ratio: float = 0.25) -> GapReport:
    """Gap report (per expression, with mirrored counts) of the faces of a view, from one database read."""
    subset, yaw, pitch, expr = view.values(["subset", "yaw", "pitch", "expression.label"])
    ok = np.array([y is not None and p is not None for y, p in zip(yaw, pitch)], dtype=bool)
    pick = lambda values, dtype: np.asarray(values, dtype=dtype)[ok] if len(values) else np.zeros(0, dtype=dtype)
    return compute_gaps(
        pick(subset, object), pick([v if v is not None else np.nan for v in yaw], float),
        pick([v if v is not None else np.nan for v in pitch], float),
        pick([e or UNKNOWN for e in expr], object), tuple(yaw_edges), tuple(pitch_edges), min_count, thin_ratio,
    )


def expression_index(report: GapReport, expression: str | None) -> int | None:
    """Index of an expression label in the report; None for all expressions (or one the view lacks)."""
    if not expression or expression == ALL_EXPRESSIONS or expression not in report.expressions:
        return None
    return report.expressions.index(expression)


def grid(report: GapReport, name: str, expression: str | None = None) -> np.ndarray:
    """(pitch, yaw) counts of one subset, for one expression or all."""
    e = expression_index(report, expression)
    counts = report.counts(name)
    return counts.sum(0) if e is None else counts[e]


def coverage_scores(report: GapReport, expression: str | None = None) -> dict[str, Any]:
    """Totals and each set's coverage of the other (plain and with flipped faces) for one expression or all."""
    e = expression_index(report, expression)
    pick = (lambda a: a.sum(0)) if e is None else (lambda a: a[e])
    out: dict[str, Any] = {}
    for have, lack in (("A", "B"), ("B", "A")):
        h, l, m = pick(report.counts(have)), pick(report.counts(lack)), pick(report.counts(lack, True))
        total = max(int(h.sum()), 1)
        out[have] = int(h.sum())
        out[f"{lack}_covers_{have}"] = float(h[l > 0].sum() / total)
        out[f"{lack}_covers_{have}_flipped"] = float(h[(l + m) > 0].sum() / total)
    for name in SUBSETS:
        status = report.status(name, e)
        out[f"{name}_marks"] = {k: int((status == k).sum()) for k in MARKS}
    return out


def coverage_figure(report: GapReport, expression: str | None = None) -> dict[str, Any]:
    """Plotly figure (plain dicts): A and B as yaw x pitch heatmaps side by side, gap cells outlined and marked.

    Colour is each set's share of its own faces (sets of different sizes compare), the number the count.
    Traces are named 'A' and 'B' so a click tells which set's cell it was.
    """
    ylab, plab = bin_labels(report.yaw_edges), bin_labels(report.pitch_edges)
    e = expression_index(report, expression)
    data, shapes = [], []
    for k, name in enumerate(SUBSETS):
        counts = grid(report, name, expression)
        share = counts / max(int(counts.sum()), 1)
        status = report.status(name, e)
        text = [[f"{int(c)} {MARKS[s][1]}" if s else str(int(c)) for c, s in zip(crow, srow)]
                for crow, srow in zip(counts, status)]
        hover = [[f"{name} · yaw {ylab[x]} · pitch {plab[y]}<br>{int(counts[y, x])} faces"
                  + (f"<br>{MARKS[status[y, x]][2]}" if status[y, x] else "") for x in range(len(ylab))]
                 for y in range(len(plab))]
        axis = "" if k == 0 else str(k + 1)
        data.append({
            "type": "heatmap", "name": name, "x": ylab, "y": plab, "z": share.round(4).tolist(), "text": text,
            "texttemplate": "%{text}", "hovertext": hover, "hoverinfo": "text", "customdata": counts.tolist(),
            "colorscale": "Viridis", "zmin": 0, "zmax": float(max(share.max(), 1e-6)), "showscale": False,
            "xaxis": f"x{axis}", "yaxis": f"y{axis}", "xgap": 2, "ygap": 2,
        })
        for (y, x), s in np.ndenumerate(status):
            if s:
                shapes.append({"type": "rect", "xref": f"x{axis}", "yref": f"y{axis}", "x0": x - 0.47, "x1": x + 0.47,
                               "y0": y - 0.45, "y1": y + 0.45, "line": {"color": MARKS[s][0], "width": 3,
                                                                         "dash": "dot" if s == "flip" else "solid"}})
    scores = coverage_scores(report, expression)
    title = lambda n, o: (f"<b>{n}</b>: {scores[n]} faces<br>{o} covers {scores[f'{o}_covers_{n}']:.0%} "
                          f"({scores[f'{o}_covers_{n}_flipped']:.0%} with flips)")
    axis = lambda dom, **kw: {"domain": dom, "title": {"text": "yaw (deg)"}, "type": "category", "tickangle": -45, **kw}
    layout = {
        "xaxis": axis([0, 0.48]), "xaxis2": axis([0.52, 1.0]),
        "yaxis": {"title": {"text": "pitch (deg)"}, "type": "category", "anchor": "x"},
        "yaxis2": {"type": "category", "anchor": "x2", "showticklabels": False},
        "annotations": [{"text": title("A", "B"), "x": 0.24, "y": 1.0, "yanchor": "bottom", "xref": "paper", "yref": "paper", "showarrow": False},
                        {"text": title("B", "A"), "x": 0.76, "y": 1.0, "yanchor": "bottom", "xref": "paper", "yref": "paper", "showarrow": False}],
        "shapes": shapes, "margin": {"l": 80, "r": 10, "t": 50, "b": 80}, "clickmode": "event", "dragmode": False,
        "height": 460, "font": {"size": 11},
    }
    return {"data": data, "layout": layout}


def cell_of(yaw_edges: tuple[float, ...], pitch_edges: tuple[float, ...], yaw_label: str, pitch_label: str
            ) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """The (yaw_range, pitch_range) of a cell given its axis labels."""
    ylab, plab = bin_labels(tuple(yaw_edges)), bin_labels(tuple(pitch_edges))
    if yaw_label not in ylab or pitch_label not in plab:
        raise ValueError(f"no cell yaw {yaw_label!r} pitch {pitch_label!r} with these bins")
    return bin_range(tuple(yaw_edges), ylab.index(yaw_label)), bin_range(tuple(pitch_edges), plab.index(pitch_label))


def cell_view(view: Any, yaw_edges: tuple[float, ...], pitch_edges: tuple[float, ...], subsets: list[str],
              yaw_label: str, pitch_label: str, expression: str | None = None) -> Any:
    """The faces of these subsets in one cell of a view's coverage grid."""
    yaw_range, pitch_range = cell_of(yaw_edges, pitch_edges, yaw_label, pitch_label)
    label = None if not expression or expression == ALL_EXPRESSIONS else expression
    return view.match(cell_filter(subsets, yaw_range, pitch_range, label))


def stages_key(view: Any) -> str:
    """A view's stages as a comparable string (uuids left out)."""
    return json.dumps(view._serialize(include_uuids=False), sort_keys=True, default=str)


def view_from_key(dataset: Any, key: str | None) -> Any:
    """The view of a dataset whose stages ``stages_key`` gave (the whole dataset for none)."""
    from fiftyone.core.view import DatasetView

    return DatasetView._build(dataset, json.loads(key)) if key else dataset.view()


def data_stamp(view: Any) -> list[Any]:
    """What changes when faces of a view are added, removed or edited: count and latest modification."""
    import fiftyone as fo

    count, latest = view.aggregate([fo.Count(), fo.Max("last_modified_at")])
    return [int(count), str(latest)]
