"""Who each face is: identity decided per face track, clustered with cannot-links, unsure where it cannot tell.

``score.py`` (pure: tracks -> units -> clusters -> verdicts), ``cluster.py`` (average linkage with
cannot-links), ``second_look.py`` (unsure tracks judged again by a pose-robust descriptor), ``dataset.py`` (a
subset of a FiftyOne dataset: fields and the cleanup views).
"""
from curate.ops.identity.cluster import constrained_average_linkage, normalise_rows
from curate.ops.identity.dataset import (
    UNSURE_VIEW,
    WRONG_IDENTITY_VIEW,
    dataset_identity,
    identity_settings,
    left_out_line,
    reference_faces,
    usable_faces,
)
from curate.ops.identity.score import IdentityScores, reliable_faces, score_identity

__all__ = [
    "UNSURE_VIEW",
    "WRONG_IDENTITY_VIEW",
    "IdentityScores",
    "constrained_average_linkage",
    "dataset_identity",
    "identity_settings",
    "left_out_line",
    "usable_faces",
    "normalise_rows",
    "reference_faces",
    "reliable_faces",
    "score_identity",
]
