"""UMAP of the identity embeddings as a fiftyone.brain visualization run (the App's Embeddings panel) + a PNG."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from curate.core.progress import busy
from curate.dataset.subsets import check_subset

DEFAULT_BRAIN_KEY = "faceset_umap"


def compute_umap(
    name: str,
    brain_key: str = DEFAULT_BRAIN_KEY,
    subset: str | None = None,
    neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 51,
    out: Path | None = None,
    progress: bool = True,
) -> tuple[Any, Path]:
    """Run brain.compute_visualization(method='umap') on the 'embedding' field; returns the results and a PNG path."""
    check_subset(subset, optional=True)
    import fiftyone.brain as fob
    from fiftyone import ViewField as F

    from curate.dataset.store import load_dataset, media_dir

    ds = load_dataset(name)
    view = ds.match(F("subset") == subset) if subset else ds
    n = len(view)
    if n < 3:
        raise ValueError(f"UMAP needs at least 3 faces, {name!r} has {n}")
    if ds.has_brain_run(brain_key):
        ds.delete_brain_run(brain_key)
    with busy(f"umap of {n} faces", progress), warnings.catch_warnings():  # a seed means one thread, said every run
        warnings.filterwarnings("ignore", message="n_jobs value .* overridden", category=UserWarning)
        results = fob.compute_visualization(
            view, embeddings="embedding", method="umap", brain_key=brain_key, num_dims=2,
            num_neighbors=min(neighbors, n - 1), min_dist=min_dist, seed=seed, verbose=False,
        )
    path = Path(out) if out else media_dir(ds).parent / "reports" / f"{brain_key}.png"
    labels = view.values("subset")
    identity = view.values("identity_ok") if ds.has_sample_field("identity_ok") else None
    plot_points(np.asarray(results.points), labels, identity, path, title=f"{name}: UMAP of identity embeddings")
    return results, path


IDENTITY_GROUPS = ((True, "the identity", "o", 14), (False, "other people", "x", 30), (None, "unsure", "^", 22))


def point_groups(subsets: list[str], identity: list[bool | None] | None
                 ) -> list[tuple[str, str, np.ndarray, str, int]]:
    """(subset, legend label, which points, marker, size) of each group the scatter draws: per subset, and per
    identity verdict once `faceset identity` has run."""
    subsets_arr = np.asarray(subsets, dtype=object)
    groups = []
    for sub in sorted(set(subsets)):
        mine = subsets_arr == sub
        if identity is None:
            groups.append((sub, sub, mine, "o", 14))
            continue
        for verdict, words, marker, size in IDENTITY_GROUPS:
            sel = mine & np.array([v is verdict for v in identity])
            if sel.any():
                groups.append((sub, f"{sub}: {words} ({int(sel.sum())})", sel, marker, size))
    return groups


def plot_points(points: np.ndarray, subsets: list[str], identity: list[bool | None] | None, path: Path,
                title: str) -> Path:
    """Scatter PNG: colour by subset, marker by `faceset identity`'s verdict (the identity, other people,
    unsure) when it has been run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    colours = {"A": "tab:blue", "B": "tab:orange"}
    for sub, label, sel, marker, size in point_groups(subsets, identity):
        ax.scatter(points[sel, 0], points[sel, 1], s=size, marker=marker, c=colours.get(sub, "tab:gray"), label=label)
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
