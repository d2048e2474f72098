"""The App plugin's operators run through FiftyOne's own operator executor."""
from __future__ import annotations


def test_plugin_operators_execute(faces_dataset, tmp_path):
    import fiftyone as fo
    import fiftyone.operators as foo

    from curate.app.launch import register_plugin

    register_plugin()
    uris = {op.uri for op in foo.list_operators()}
    assert "@faceset/curate/gap_report" in uris
    result = foo.execute_operator("@faceset/curate/gap_report", ctx={"dataset": faces_dataset, "params": {"min_count": 2}})
    assert "B covers" in result.result["summary"]
    result = foo.execute_operator("@faceset/curate/identity_review", ctx={"dataset": faces_dataset, "params": {"subset": "B"}})
    assert result.result["flagged"] >= 1  # B holds Obama, Biden and others
    result = foo.execute_operator("@faceset/curate/dedupe_faces", ctx={"dataset": faces_dataset, "params": {"subset": "B"}})
    assert "would remove" in result.result["summary"] and result.result["removed"] == 0
    ds = fo.load_dataset(faces_dataset)
    assert ds.has_saved_view("near_duplicates") and ds.has_saved_view("identity_review")
    result = foo.execute_operator("@faceset/curate/export_faces", ctx={
        "dataset": faces_dataset, "params": {"subset": "A", "out": str(tmp_path / "exp"), "n": 5, "format": "dfl"}})
    assert result.result["count"] == 5 and len(list((tmp_path / "exp").glob("*.jpg"))) == 5
    result = foo.execute_operator("@faceset/curate/draw_mesh", ctx={"dataset": faces_dataset, "params": {"limit": 4}})
    assert result.result["count"] == 4
    drawn = ds.exists("mesh_keypoints")
    assert len(drawn) == 4 and len(drawn.first().mesh_keypoints.keypoints[0].points) == 468
