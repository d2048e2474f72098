"""`faceset info`: what a face dataset holds, from database aggregations."""
from __future__ import annotations

from typing import Any

from fiftyone import ViewField as F  # noqa: I001 - after curate.dataset.store, which configures FiftyOne

from curate.core.expression import SCORE_NAMES
from curate.core.pose import POSE_METHODS
from curate.dataset.store import load_dataset

RANGE_FIELDS = ("yaw", "pitch", "roll", "blur", "brightness", "face_size", "det_score", *SCORE_NAMES)


def dataset_info(name: str) -> dict[str, Any]:
    """Counts per subset, min/mean/max of the numeric fields and expression label counts per subset."""
    ds = load_dataset(name)
    schema = ds.get_field_schema()
    fields = [f for f in RANGE_FIELDS if f in schema]
    ranges = {}
    if len(ds):
        bounds = ds.bounds(fields)
        means = ds.mean(fields)
        ranges = {f: {"min": bounds[i][0], "mean": means[i], "max": bounds[i][1]} for i, f in enumerate(fields)}
    return {
        "name": ds.name,
        "samples": len(ds),
        "subsets": dict(sorted(ds.count_values("subset").items())) if "subset" in schema else {},
        "sources": len(ds.distinct("source")) if "source" in schema else 0,
        "backends": ds.count_values("backend") if "backend" in schema else {},
        "ranges": ranges,
        # per subset; faces whose landmarks were guessed (no mesh) have no expression: counted as "unknown"
        "expressions": _expressions(ds) if "expression" in schema and "subset" in schema else {},
        "landmarks_missing": len(ds.match(F("landmarks_ok") == False)) if "landmarks_ok" in schema else 0,  # noqa: E712
        "pose_methods": _pose_methods(ds, "pose_method" in schema),
        "tracks": _track_counts(ds) if "track" in schema else {},
        "saved_views": ds.list_saved_views(),
    }


def _expressions(ds: Any) -> dict[str, dict[str, int]]:
    """Per subset: faces per expression label."""
    return {subset: dict(sorted((k or "unknown", v) for k, v in ds.match(F("subset") == subset)
                                .count_values("expression.label").items()))
            for subset in sorted(ds.distinct("subset"))}


def _pose_methods(ds: Any, recorded: bool) -> dict[str, int]:
    """Faces per pose estimator (faces extracted before estimators were recorded: 'older')."""
    out: dict[str, int] = {}
    for method, n in (ds.count_values("pose_method") if recorded else {None: len(ds)}).items():
        key = method if method in POSE_METHODS.values() else "older"
        out[key] = out.get(key, 0) + n
    return {k: v for k, v in out.items() if v}


def _track_counts(ds: Any) -> dict[str, dict[str, int]]:
    """Per subset: shots, tracks, non-face detections, and faces of unsure identity."""
    out = {}
    schema = ds.get_field_schema()
    for subset in sorted(ds.distinct("subset")):
        view = ds.match(F("subset") == subset)
        videos = view.match(F("source_type") == "video")
        shots = len(videos.count_values(F("source").concat("#", F("shot").to_string()))) if "shot" in schema else 0
        out[subset] = {
            "shots": shots,
            "tracks": len(view.distinct("track")),
            "not_faces": len(view.match(F("is_face") == False)) if "is_face" in schema else 0,  # noqa: E712
            "unsure": len(view.match((F("identity_cluster") == -1) & (F("is_face") != False)))  # noqa: E712
            if "identity_cluster" in schema else 0,
        }
    return out


def format_info(info: dict[str, Any]) -> str:
    """Plain-text table of dataset_info()."""
    lines = [f"dataset {info['name']}: {info['samples']} faces from {info['sources']} sources"]
    lines.append("subsets: " + (", ".join(f"{k}={v}" for k, v in info["subsets"].items()) or "none"))
    if info["ranges"]:
        lines.append(f"{'field':<14}{'min':>10}{'mean':>10}{'max':>10}")
        for f, r in info["ranges"].items():
            lines.append(f"{f:<14}{r['min']:>10.2f}{r['mean']:>10.2f}{r['max']:>10.2f}")
    if info.get("pose_methods"):
        older = info["pose_methods"].get("older", 0)
        lines.append("pose estimators: " + ", ".join(f"{k}={v}" for k, v in info["pose_methods"].items())
                     + (f" (the older angles are from an earlier estimator: `faceset pose {info['name']}` recomputes"
                        " them)" if older else ""))
    if info.get("landmarks_missing"):
        lines.append(f"faces without landmarks (mesh failed; pose from detector keypoints): {info['landmarks_missing']}")
    for subset, t in info.get("tracks", {}).items():
        lines.append(f"{subset}: {t['tracks']} tracks in {t['shots']} video shots (an image's face is a track of its own); "
                     f"{t['not_faces']} detections that are not faces, {t['unsure']} faces of unsure identity")
    for subset, counts in info["expressions"].items():
        lines.append(f"{subset} expressions: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    if not info["expressions"]:
        lines.append("expressions: none")
    if info["saved_views"]:
        lines.append("saved views: " + ", ".join(info["saved_views"]))
    return "\n".join(lines)
