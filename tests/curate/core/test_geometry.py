"""Pure geometry: alignment, pose, quality and expression, without any model."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from curate.core.align import (
    alignment_matrix,
    estimate_coverage,
    mean_face_2d,
    transform_points,
    umeyama,
    warp_face,
)
from curate.core.expression import ExpressionThresholds, expression_scores, label_expression
from curate.core.landmarks import MIRROR, mean_face_3d, mirror_landmarks
from curate.core.pose import Pose, estimate_pose, rotation_from_pose
from curate.core.quality import blur_score, brightness, face_mask


def project(yaw: float = 0, pitch: float = 0, roll: float = 0, scale: float = 150, centre=(320, 240)) -> np.ndarray:
    """68 landmarks of the mean face turned by yaw, pitch, roll (orthographic)."""
    pts = mean_face_3d() * np.array([1, 1, -1])
    return (pts @ rotation_from_pose(Pose(yaw, pitch, roll)).T)[:, :2] * scale + np.array(centre)


def test_mirror_is_an_involution():
    assert sorted(MIRROR) == list(range(68))
    assert np.array_equal(MIRROR[MIRROR], np.arange(68))


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (30, 2))
    a = np.radians(25)
    true = np.array([[1.7 * np.cos(a), -1.7 * np.sin(a), 12], [1.7 * np.sin(a), 1.7 * np.cos(a), -7]])
    assert np.allclose(umeyama(src, transform_points(src, true)), true, atol=1e-9)


def test_alignment_puts_face_at_fixed_coverage():
    lms = project(roll=20, scale=90, centre=(500, 300))
    mat = alignment_matrix(lms, size=256, coverage=0.75)
    aligned = transform_points(lms, mat)
    assert np.abs(aligned[17:] - mean_face_2d(256, 0.75)[17:]).max() < 1e-6
    span = np.ptp(aligned, axis=0).max()
    assert span == pytest.approx(0.75 * 256, rel=1e-6)
    assert np.allclose(aligned.min(0) + aligned.max(0), 256, atol=1e-6)  # centred


@pytest.mark.parametrize("angles", [(0, 0, 0), (30, 0, 0), (-40, 10, 0), (0, 20, 0), (0, -15, 5), (0, 0, 25)])
def test_pose_recovers_angles(angles):
    yaw, pitch, roll = estimate_pose(project(*angles))
    assert yaw == pytest.approx(angles[0], abs=3.5)
    assert pitch == pytest.approx(angles[1], abs=3.5)
    assert roll == pytest.approx(angles[2], abs=3.5)


def test_pose_signs_under_mirroring():
    lms = project(25, 10, 8)
    yaw, pitch, roll = estimate_pose(lms)
    myaw, mpitch, mroll = estimate_pose(mirror_landmarks(lms, 640))
    assert myaw == pytest.approx(-yaw, abs=0.5)
    assert mpitch == pytest.approx(pitch, abs=0.5)
    assert mroll == pytest.approx(-roll, abs=0.5)


def test_in_plane_rotation_changes_roll_by_minus_theta():
    lms = project(15, 5, 0)
    base = estimate_pose(lms).roll
    for theta in (-30, 12, 40):
        rot = cv2.getRotationMatrix2D((320, 240), theta, 1.0)
        assert estimate_pose(transform_points(lms, rot)).roll == pytest.approx(base - theta, abs=1.0)


def _textured_face(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = (rng.uniform(0, 255, (256, 256, 3))).astype(np.uint8)
    img = cv2.GaussianBlur(img, (3, 3), 0)
    lms = mean_face_2d(256, 0.75)
    return img, face_mask(lms, 256)


def test_blur_drops_when_blurred():
    img, mask = _textured_face()
    sharp = blur_score(img, mask)
    assert blur_score(cv2.GaussianBlur(img, (0, 0), 2.0), mask) < sharp / 5


def test_brightness_inside_mask():
    img = np.zeros((256, 256, 3), np.uint8)
    mask = face_mask(mean_face_2d(256, 0.75), 256)
    img[mask > 0] = 200
    assert brightness(img, mask) == pytest.approx(200, abs=1)
    assert brightness(img) < 200


def test_warp_face_output_size():
    img, _ = _textured_face()
    assert warp_face(img, alignment_matrix(project(centre=(128, 128), scale=60)), 128).shape == (128, 128, 3)


def _open_mouth(lms: np.ndarray, amount: float) -> np.ndarray:
    out = lms.copy()
    out[[56, 57, 58, 65, 66, 67], 1] += amount  # lower lip down
    out[list(range(5, 12)), 1] += amount  # jaw follows
    return out


def _close_eyes(lms: np.ndarray) -> np.ndarray:
    out = lms.copy()
    for top, bottom in ((37, 41), (38, 40), (43, 47), (44, 46)):
        mid = (out[top, 1] + out[bottom, 1]) / 2
        out[top, 1] = out[bottom, 1] = mid
    return out


def test_expression_scores_follow_geometry():
    neutral = project()
    scores = expression_scores(neutral)
    assert label_expression(scores) == "neutral"
    assert all(0 <= v <= 1 for v in scores.values())
    opened = expression_scores(_open_mouth(neutral, 45))
    assert opened["mouth_open"] > 0.5 and label_expression(opened) == "mouth_open"
    closed = expression_scores(_close_eyes(neutral))
    assert closed["eyes_closed"] == 1.0 and label_expression(closed) == "eyes_closed"
    smile = neutral.copy()
    smile[48, 0] -= 20
    smile[54, 0] += 20
    smile[[48, 54], 1] -= 12
    assert expression_scores(smile)["smile"] > 0.5
    raised = neutral.copy()
    raised[17:27, 1] -= 25
    assert label_expression(expression_scores(raised)) == "brows_raised"


def test_expression_scores_are_scale_and_roll_invariant():
    a = expression_scores(_open_mouth(project(), 30))
    rot = cv2.getRotationMatrix2D((320, 240), 30, 0.5)
    b = expression_scores(transform_points(_open_mouth(project(), 30), rot))
    assert a == pytest.approx(b, abs=1e-6)


def test_thresholds_adjust_labels():
    scores = {"eyes_closed": 0.0, "mouth_open": 0.3, "smile": 0.0, "brows_raised": 0.0}
    assert label_expression(scores) == "neutral"
    assert label_expression(scores, ExpressionThresholds.parse(["mouth_open=0.25"])) == "mouth_open"
    with pytest.raises(ValueError, match="bad expression threshold"):
        ExpressionThresholds.parse(["grin=0.3"])


@pytest.mark.parametrize("coverage", [0.6, 0.75, 0.9])
def test_coverage_is_recovered_from_the_aligned_landmarks(coverage):
    rng = np.random.default_rng(1)
    src = mean_face_3d()[:, :2] * 80 + rng.normal(0, 1.5, (68, 2)) + 300  # a face in a frame, with landmark noise
    matrix = alignment_matrix(src, 128, coverage)
    assert estimate_coverage(transform_points(src, matrix), 128) == pytest.approx(coverage, rel=1e-6)


def test_a_face_found_twice_is_stored_once():
    """Two detections whose landmarks land on one face (detector boxes apart enough to pass NMS) keep one face:
    the landmarked one, then the higher score; faces side by side all stay."""
    from curate.analysis.protocols import distinct_faces

    face = np.array([[100.0, 100.0], [180.0, 100.0], [140.0, 190.0]])
    shifted = face + [12.0, 8.0]  # IoU of the landmark boxes ~0.6
    neighbour = face + [90.0, 0.0]  # the next person: boxes touch, no overlap
    assert distinct_faces([face, shifted, neighbour], [True, True, True], [0.6, 0.9, 0.7]) == [1, 2]
    assert distinct_faces([face, shifted, neighbour], [True, False, True], [0.6, 0.9, 0.7]) == [0, 2]
    assert distinct_faces([face, face + [70.0, 0.0]], [True, True], [0.9, 0.8]) == [0, 1]  # IoU ~0.06
