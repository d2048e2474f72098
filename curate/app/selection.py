"""The App's selection: the faces an action takes (the grid's selection, else the current view) and a review's
selection carried across the view change that would clear it (a small state machine kept in the dataset's
execution store and driven by the coverage panel's timer)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from curate.app.coverage import stages_key


def target(ctx: Any) -> Any:
    """The faces an operator acts on: the grid's selection, else the current view."""
    return ctx.dataset.select(ctx.selected) if ctx.selected else ctx.view


def progress_callback(ctx: Any) -> Callable[[float, str], None]:
    """An ``on_progress`` that reports to the App's operator progress bar."""
    return lambda fraction, label: ctx.set_progress(progress=float(fraction), label=label)


PENDING_SELECTION = "pending_selection"
SYNC_INTERVAL_MS = 700  # the panel's timer: how often it checks that a review's selection reached the grid
SYNC_CONFIRMATIONS = 2  # consecutive checks that must see the selection in the grid before the request is done
SYNC_TIMEOUT_S = 45.0  # a view that never loads (the user moved on) ends the request


def select_after_view_change(ctx: Any, ids: list[str], view: Any) -> None:
    """Select faces in the App once the view just set has loaded (a view change clears the selection).

    Selected now too; the request waits in the dataset's execution store, and the coverage panel's timer
    (and its view/selection events) select the faces again until the App shows ``view`` with exactly them
    selected on consecutive checks. The panel also knows ``view`` as a review's, not a user's.
    """
    ctx.ops.set_selected_samples(ids)
    request = {"ids": list(ids), "view": stages_key(view), "since": time.time(), "seen": 0}
    ctx.store("faceset").set(PENDING_SELECTION, request, ttl=300)


def pending_selection(ctx: Any) -> dict[str, Any] | None:
    """The review's selection still waiting to reach the App's grid, if any."""
    request = ctx.store("faceset").get(PENDING_SELECTION)
    return request if isinstance(request, dict) and request.get("ids") else None


def apply_pending_selection(ctx: Any) -> bool:
    """One check of a waiting review selection; returns whether it still waits.

    Until the App reports the review's view nothing is sent (the view's load would clear it again). On that
    view, a selection that differs is sent again; one seen ``SYNC_CONFIRMATIONS`` times in a row is done, so a
    user who changes the selection afterwards is not overruled.
    """
    request = pending_selection(ctx)
    if request is None:
        return False
    store = ctx.store("faceset")
    if time.time() - float(request.get("since", 0)) > SYNC_TIMEOUT_S:
        store.delete(PENDING_SELECTION)
        return False
    if stages_key(ctx.view) != request.get("view"):
        return True
    if set(ctx.selected or []) == set(request["ids"]):
        request["seen"] = int(request.get("seen", 0)) + 1
        if request["seen"] >= SYNC_CONFIRMATIONS:
            store.delete(PENDING_SELECTION)
            return False
    else:
        request["seen"] = 0
        ctx.ops.set_selected_samples(request["ids"])
    store.set(PENDING_SELECTION, request, ttl=300)
    return True
