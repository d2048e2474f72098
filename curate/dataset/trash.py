"""Reversible bulk deletion: samples move to a '<dataset>-trash' dataset with their ids, undo moves them back.

Crops stay on disk. A crash between the copy and the delete leaves the samples in both places;
undo skips samples that are still in the dataset, so nothing is ever lost or doubled.
"""
from __future__ import annotations

import time
from typing import Any

from curate.dataset.store import fo, load_dataset

BATCH_FIELD = "trash_batch"
BATCHES_KEY = "faceset_trash_batches"


def trash_name(name: str) -> str:
    """Name of a dataset's trash dataset."""
    return f"{name}-trash"


def _trash(name: str) -> fo.Dataset:
    tname = trash_name(name)
    if fo.dataset_exists(tname):
        return fo.load_dataset(tname)
    return fo.Dataset(tname, persistent=True)


def _keep_created_at(src: fo.Dataset, dst: fo.Dataset, ids: list[str]) -> None:
    """Give the copies in ``dst`` the creation times of the samples in ``src`` (add_collection stamps new ones)."""
    from bson import ObjectId
    from pymongo import UpdateOne

    oids = [ObjectId(i) for i in ids]
    stamps = src._sample_collection.find({"_id": {"$in": oids}}, {"created_at": 1})
    ops = [UpdateOne({"_id": d["_id"]}, {"$set": {"created_at": d["created_at"]}}) for d in stamps if "created_at" in d]
    if ops:
        dst._sample_collection.bulk_write(ops, ordered=False)


def delete_reversibly(ds: fo.Dataset, view: Any, reason: str) -> dict[str, Any]:
    """Move the samples of a view to the trash as one undoable batch; returns the batch record."""
    ids = list(view.values("id"))
    batch = {"id": f"{time.strftime('%Y%m%d-%H%M%S')}-{len(ds.info.get(BATCHES_KEY) or [])}", "reason": reason, "count": len(ids)}
    if not ids:
        return batch
    trash = _trash(ds.name)
    trash.add_collection(ds.select(ids), new_ids=False, include_info=False)
    _keep_created_at(ds, trash, ids)
    if not trash.has_sample_field(BATCH_FIELD):
        trash.add_sample_field(BATCH_FIELD, fo.StringField)
    trash.select(ids).set_values(BATCH_FIELD, [batch["id"]] * len(ids))
    ds.delete_samples(ids)
    ds.info[BATCHES_KEY] = [*(ds.info.get(BATCHES_KEY) or []), batch]
    ds.save()
    return batch


def list_batches(name: str) -> list[dict[str, Any]]:
    """Deleted batches that can still be restored, oldest first."""
    return list(load_dataset(name).info.get(BATCHES_KEY) or [])


def undo(name: str, batch_id: str | None = None) -> dict[str, Any]:
    """Restore the latest (or the named) deleted batch into the dataset, ids unchanged."""
    ds = load_dataset(name)
    batches = list(ds.info.get(BATCHES_KEY) or [])
    if not batches:
        raise LookupError(f"nothing to undo in {name!r}")
    batch = next((b for b in batches if b["id"] == batch_id), None) if batch_id else batches[-1]
    if batch is None:
        raise LookupError(f"no deleted batch {batch_id!r} in {name!r} (batches: {', '.join(b['id'] for b in batches)})")
    trash = _trash(name)
    from fiftyone import ViewField as F

    in_trash = trash.match(F(BATCH_FIELD) == batch["id"])
    present = set(ds.select(in_trash.values("id")).values("id"))
    restore = in_trash.exclude(list(present)) if present else in_trash
    restored = restore.values("id")
    ds.add_collection(restore.exclude_fields(BATCH_FIELD), new_ids=False, include_info=False)
    _keep_created_at(trash, ds, restored)
    trash.delete_samples(in_trash)
    ds.info[BATCHES_KEY] = [b for b in batches if b["id"] != batch["id"]]
    ds.save()
    return batch
