"""Curation from the App: trash and undo on the selection, the identity review and the near-duplicate review
(each shows its faces with the ones to remove selected). The panel's buttons and the operators share these."""
from __future__ import annotations

from typing import Any

from curate.app.selection import progress_callback, select_after_view_change, target
from curate.dataset.store import load_dataset
from curate.dataset.subsets import check_subset
from curate.dataset.trash import delete_reversibly, undo
from curate.ops.dedupe import DEFAULT_MAX_BITS, DUPLICATES_VIEW, dataset_dedupe
from curate.ops.identity import WRONG_IDENTITY_VIEW, dataset_identity


def trash_selection(ctx: Any, reason: str = "picked in the App") -> dict[str, Any]:
    """Trash the App's selection (else its view) as one undoable batch; clears the selection."""
    faces = target(ctx)
    ids = faces.values("id")
    batch = delete_reversibly(faces._root_dataset, faces, reason)
    ctx.ops.clear_selected_samples()
    ctx.ops.reload_dataset()
    return {"summary": f"moved **{batch['count']}** faces to the trash (batch `{batch['id']}`)",
            "count": batch["count"], "batch": batch["id"], "ids": ids}


def undo_trash(ctx: Any, batch_id: str | None = None) -> dict[str, Any]:
    """Restore the last (or the named) trash batch of the App's dataset."""
    batch = undo(ctx.dataset.name, batch_id)
    ctx.ops.reload_dataset()
    return {"summary": f"restored **{batch['count']}** faces (batch `{batch['id']}`: {batch['reason']})",
            "count": batch["count"], "batch": batch["id"]}


def identity_review(ctx: Any, subset: str, threshold: float | None = None) -> dict[str, Any]:
    """Score a subset's identity; in the App, show it worst-first with the faces of other people selected."""
    ctx.set_progress(progress=0.0, label=f"scoring subset {subset}")
    _, views = dataset_identity(ctx.dataset.name, subset, threshold=threshold, review=True)
    view, flagged = flagged_identity(ctx.dataset.name, subset)
    if not ctx.delegated:
        ctx.ops.set_view(view)
        select_after_view_change(ctx, flagged, view)
    summary = (f"subset {subset}: {len(view)} faces, worst first; **{len(flagged)}** flagged as another person "
               f"are selected. Glance at them, then trash the selection.")
    return {"summary": summary, "flagged": len(flagged), "flagged_ids": flagged, "views": views}


def flagged_identity(name: str, subset: str) -> tuple[Any, list[str]]:
    """The identity review view (subset sorted worst-first) and the ids flagged as another person: the subset's
    part of identity's ``wrong_identity`` view (kept faces left out there)."""
    from fiftyone import ViewField as F

    check_subset(subset)
    ds = load_dataset(name)
    view = ds.match(F("subset") == subset).sort_by("identity_distance", reverse=True)
    flagged = set(ds.load_saved_view(WRONG_IDENTITY_VIEW).match(F("subset") == subset).values("id"))
    return view, [i for i in view.values("id") if i in flagged]


def duplicate_review(ctx: Any, subset: str, max_bits: int = DEFAULT_MAX_BITS, dry_run: bool = True) -> dict[str, Any]:
    """Group near-duplicates; a dry run shows dedupe's review view (each group whole, its kept face first) of the
    subset with the faces it would remove selected."""
    from fiftyone import ViewField as F

    results, batch = dataset_dedupe(ctx.dataset.name, subset, max_bits=max_bits, dry_run=dry_run, progress=False,
                                    on_progress=progress_callback(ctx))
    groups = next(iter(results.values()))
    removable: list[str] = []
    if dry_run:
        view = ctx.dataset.load_saved_view(DUPLICATES_VIEW).match(F("subset") == subset)
        removable = view.match(F("dup_keep") == False).values("id")  # noqa: E712
        if not ctx.delegated:
            ctx.ops.set_view(view)
            select_after_view_change(ctx, removable, view)
    elif not ctx.delegated:
        ctx.ops.reload_dataset()
    verb = "would remove (selected: trash them to remove)" if dry_run else "removed (undo: *faceset: undo last trash*)"
    return {"summary": f"{groups.groups} groups, kept face first; {verb} **{groups.removable}** faces",
            "removed": 0 if dry_run else batch["count"], "removable_ids": removable}
