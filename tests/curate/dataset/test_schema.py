"""The field list (curate.dataset.schema) against a real dataset and against the docs' table."""
from __future__ import annotations

from paths import ROOT

from curate.dataset.schema import FIELDS, is_known_field


def test_the_docs_table_lists_every_field():
    text = (ROOT / "docs" / "extract.md").read_text(encoding="utf-8")
    table = text[text.index("## Sample fields"):text.index("## Geometry")]
    missing = [name for name in FIELDS if f"`{name}`" not in table]
    assert not missing, missing


def test_every_field_a_worked_dataset_holds_is_in_the_schema(photos_dataset):
    import fiftyone as fo

    from curate.app.mesh_view import draw_mesh
    from curate.dataset.trash import delete_reversibly, trash_name
    from curate.ops.dedupe import dataset_dedupe
    from curate.ops.identity import dataset_identity
    from curate.ops.keep import mark_keep

    dataset_identity(photos_dataset, "B")
    dataset_dedupe(photos_dataset, "B", dry_run=True, progress=False)
    ds = fo.load_dataset(photos_dataset)
    mark_keep(ds.limit(1))
    draw_mesh(ds, limit=2)
    delete_reversibly(ds, ds.skip(1).limit(1), "schema test")
    for name in (photos_dataset, trash_name(photos_dataset)):
        fields = set(fo.load_dataset(name).get_field_schema())
        assert {"identity_ok", "dup_keep", "keep", "mesh_keypoints", "track"} <= fields or name != photos_dataset
        unknown = sorted(f for f in fields if not is_known_field(f))
        assert not unknown, f"{name}: {unknown}"
