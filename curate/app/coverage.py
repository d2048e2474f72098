"""The App workbench's logic: the A/B coverage grids of a view, the faces of a cell, and curation on selections.

The FiftyOne panel and operators in ``curate/app/plugin`` are thin shells over these functions, so
everything here runs (and is tested) without the App.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from curate.ops.gaps import (DEFAULT_PITCH_EDGES, DEFAULT_YAW_EDGES, UNKNOWN, GapReport, bin_labels, bin_range, cell_filter,
                         compute_gaps)
from curate.ops.keep import kept_ids
from curate.dataset.subsets import SUBSETS, check_subset

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


def cell_count(report: GapReport, subsets: list[str], yaw_label: str, pitch_label: str, expression: str | None = None) -> int:
    """How many faces of these subsets a cell holds (what the grid should show after a click)."""
    y = bin_labels(report.yaw_edges).index(yaw_label)
    p = bin_labels(report.pitch_edges).index(pitch_label)
    return int(sum(grid(report, s, expression)[p, y] for s in subsets))


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


# --- curation on the faces selected in the grid (or a view) ---------------------------------------------------

def trash_faces(view: Any, reason: str) -> dict[str, Any]:
    """Move a view's faces to the dataset's trash as one undoable batch (the CLI's trash)."""
    from curate.dataset.trash import delete_reversibly

    return delete_reversibly(view._root_dataset, view, reason)


def set_subset(view: Any, subset: str) -> int:
    """Put a view's faces in subset A or B; returns how many changed."""
    check_subset(subset)
    from fiftyone import ViewField as F

    ids = view.match(F("subset") != subset).values("id")
    if ids:
        moved = view._root_dataset.select(ids)
        moved.untag_samples([s for s in SUBSETS if s != subset])  # the subset is a tag too (extract sets both)
        moved.tag_samples(subset)
        moved.set_field("subset", subset).save("subset")
    return len(ids)


def flagged_identity(name: str, subset: str) -> tuple[Any, list[str]]:
    """The identity review view (subset sorted worst-first) and the ids flagged as another person, kept ones left out."""
    check_subset(subset)
    from fiftyone import ViewField as F

    from curate.dataset.store import load_dataset

    ds = load_dataset(name)
    view = ds.match(F("subset") == subset).sort_by("identity_distance", reverse=True)
    ids, ok = view.values(["id", "identity_ok"])
    keep = kept_ids(view)
    return view, [i for i, good in zip(ids, ok) if good is False and i not in keep]


DUPLICATE_GROUPS_VIEW = "near_duplicate_groups"


def duplicate_groups(name: str, subset: str | None = None) -> tuple[Any, list[str]]:
    """Faces of every near-duplicate group with more than one face, each group's kept face first, and the ids to remove."""
    from fiftyone import ViewField as F

    from curate.dataset.store import load_dataset

    ds = load_dataset(name)
    if not ds.has_sample_field("dup_group"):
        raise ValueError(f"{name!r} has no near-duplicate groups yet: run the dedupe dry run first")
    base = ds.match(F("subset") == subset) if subset else ds
    ids, subs, group, keep, blur = base.values(["id", "subset", "dup_group", "dup_keep", "blur"])
    keys = [(s, g) for s, g in zip(subs, group)]
    sizes: dict[Any, int] = {}
    for key in keys:
        sizes[key] = sizes.get(key, 0) + 1
    rows = [(k, not bool(kp), -(b or 0.0), i) for i, k, kp, b in zip(ids, keys, keep, blur)
            if k[1] is not None and sizes[k] > 1]  # faces dedupe left out (non-faces, unsure, others) have no group
    rows.sort(key=lambda r: (str(r[0][0]), r[0][1] if r[0][1] is not None else -1, r[1], r[2]))
    ordered = [r[3] for r in rows]
    remove = [r[3] for r in rows if r[1]]
    return ds.select(ordered, ordered=True), remove
