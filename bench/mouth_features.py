"""Mouth open or closed from the image of a stored face: a small logistic regression on the mouth's pixels.

The mesh's inner-lip gap (``mesh_expression_ratios``' ``mouth_gap``) tells an open mouth from a closed one on
large sharp faces but not on the small, blurry faces of real video (AUC 0.52 on hand-labelled video faces,
``bench/out/mouth_fit.txt``): there the mesh model guesses the lips. What the picture still shows is the dark
gap between the lips. :func:`mouth_features` reads it from the aligned 256 px crop that faceset stores:

* a grey patch of the mouth (``PATCH_W`` x ``PATCH_H``), cut with the similarity transform that puts the mesh's
  mouth corners (vertices 61, 291) at fixed points, each patch normalised to zero mean and unit variance;
* darkness measures: the mean grey inside the mesh's inner-lip polygon, and the darkest pixels of the patch's
  middle, each over the median grey of the mouth box; the share of dark pixels inside the outer lips; and the
  inner-lip polygon's area over the outer lips' (mesh geometry).

:func:`mouth_open_probability` is P(open) of a logistic regression on those features (standardisation folded
into the weights), averaged over the patch and its mirror image. ``bench/mouth_fit.py --save PATH`` fits it on
photos whose mouths were labelled by the mesh on the large sharp face and then shrunk, blurred and
JPEG-compressed to video sizes (no hand labels) and writes the plain-array ``.npz`` this module reads.

Status: a bench experiment, not part of faceset. On the hand-labelled test videos the fitted model does not
separate open from closed mouths (AUC 0.41 pooled; ``bench/out/mouth_fit.txt``), so no model ships and
:func:`mouth_model` raises ``FileNotFoundError`` unless a path is given. Kept here for the next attempt.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

MOUTH_MODEL = Path(__file__).resolve().parent.parent / "data" / "human" / "mouth_lr.npz"
MOUTH_MODEL = Path(__file__).resolve().parent.parent / "curate" / "data" / "human" / "mouth_lr.npz"  # none ships
# FaceMesh lip rings (subject's right corner first): inner lips, outer lips
INNER_RING = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
OUTER_RING = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
CORNERS = (61, 291)

PATCH_W, PATCH_H = 32, 20  # the mouth patch; the corners land CORNER_SPAN apart on its middle row ...
CORNER_SPAN = 20.0
PATCH_TOP = 0.4  # ... which sits this many corner distances below the patch's top edge
GREY = np.array([0.299, 0.587, 0.114])
DARK_NAMES = ("inner_mean_rel", "strip_p10_rel", "strip_mean_rel", "dark_frac", "inner_area")


def grey_image(rgb: np.ndarray) -> np.ndarray:
    """Grey level of an RGB image, rounded to whole levels (0..255, float32)."""
    return np.round(np.asarray(rgb, np.float32) @ GREY.astype(np.float32)).astype(np.float32)


def corner_points(mesh_xy: np.ndarray, anchor: str = "mesh", size: int = 256) -> np.ndarray:
    """The two mouth corners (crop px) the patch is cut around: the mesh's (``mesh``), or where the mean face's
    corners sit in every aligned crop (``crop``: independent of how well the mesh found the lips)."""
    if anchor == "crop":
        from curate.core.align import mean_face_2d

        return np.asarray(mean_face_2d(size)[[48, 54]], np.float64)
    return np.asarray(mesh_xy, np.float64)[list(CORNERS), :2]


def patch_matrix(corners: np.ndarray) -> np.ndarray:
    """2x3 similarity taking crop pixels to mouth-patch pixels: the mouth corners onto fixed points."""
    a, b = np.asarray(corners, np.float64)
    d = b - a
    scale = CORNER_SPAN / max(float(np.hypot(*d)), 1e-6)
    cos, sin = d / max(float(np.hypot(*d)), 1e-6)
    rot = scale * np.array([[cos, sin], [-sin, cos]])
    mid = (a + b) / 2.0
    target = np.array([PATCH_W / 2.0, PATCH_TOP * CORNER_SPAN])
    return np.column_stack([rot, target - rot @ mid])


def mouth_patch(grey: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The mouth patch (PATCH_H x PATCH_W grey, float32) around these corners, not normalised."""
    m = patch_matrix(corners)
    return cv2.warpAffine(grey, m, (PATCH_W, PATCH_H), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def darkness_features(grey: np.ndarray, mesh_xy: np.ndarray, patch: np.ndarray) -> np.ndarray:
    """The DARK_NAMES measures: how dark the inside of the mouth is against the skin around it."""
    pts = np.asarray(mesh_xy, np.float64)[:, :2]
    outer = pts[list(OUTER_RING)]
    x0, y0 = outer.min(0)
    x1, y1 = outer.max(0)
    w = max(x1 - x0, 1.0)
    h, wd = grey.shape
    box = grey[int(np.clip(y0 - 0.3 * w, 0, h - 1)):int(np.clip(y1 + 0.3 * w, 1, h)),
               int(np.clip(x0, 0, wd - 1)):int(np.clip(x1, 1, wd))]
    skin = float(np.median(box)) if box.size else float(np.median(grey))
    skin = max(skin, 1.0)
    m_in = np.zeros(grey.shape, np.uint8)
    cv2.fillPoly(m_in, [np.round(pts[list(INNER_RING)]).astype(np.int32)], 1)
    m_out = np.zeros(grey.shape, np.uint8)
    cv2.fillPoly(m_out, [np.round(outer).astype(np.int32)], 1)
    inside = grey[m_in > 0]
    lips = grey[m_out > 0]
    c0, c1 = int(PATCH_W * 0.3), int(PATCH_W * 0.7)  # the patch's middle columns, between the corners
    strip = patch[:, c0:c1]
    return np.array([
        (inside.mean() if inside.size else skin) / skin,
        np.percentile(strip, 10) / skin,
        strip.mean() / skin,
        float((lips < 0.5 * skin).mean()) if lips.size else 0.0,
        m_in.sum() / max(float(m_out.sum()), 1.0),
    ])


def normalise(patch: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance (a flat patch stays flat)."""
    p = np.asarray(patch, np.float64)
    return (p - p.mean()) / (p.std() + 2.0)


def grey_features(grey: np.ndarray, mesh_xy: np.ndarray, mirror: bool = False, anchor: str = "mesh") -> np.ndarray:
    """:func:`mouth_features` of a grey crop (``grey_image``)."""
    patch = mouth_patch(grey, corner_points(mesh_xy, anchor, grey.shape[1]))
    dark = darkness_features(grey, mesh_xy, patch)
    p = normalise(patch)
    if mirror:
        p = p[:, ::-1]
    return np.r_[p.ravel(), dark]


def mouth_features(crop_rgb: np.ndarray, mesh_xy_crop_px: np.ndarray, mirror: bool = False,
                   anchor: str = "mesh") -> np.ndarray:
    """The model's features of one face: the normalised mouth patch (flattened), then DARK_NAMES.

    ``crop_rgb``: the stored aligned crop (uint8, HxWx3); ``mesh_xy_crop_px``: the stored mesh in crop pixels
    (468x2, i.e. the sample's ``mesh`` times the crop side). ``mirror``: the patch flipped left-right;
    ``anchor``: where the patch is cut (:func:`corner_points`)."""
    return grey_features(grey_image(crop_rgb), np.asarray(mesh_xy_crop_px, np.float64)[:, :2], mirror, anchor)


@dataclass(frozen=True)
class MouthModel:
    """A logistic regression on :func:`mouth_features` (standardisation folded into ``weights``)."""

    weights: np.ndarray
    bias: float
    threshold: float  # the log-odds the bench's rule calls open at (chosen on the training photos)
    anchor: str  # where the patch is cut: "mesh" or "crop" (:func:`corner_points`)

    @classmethod
    def load(cls, path: Path | str) -> MouthModel:
        with np.load(path, allow_pickle=False) as d:
            if tuple(int(v) for v in d["patch_shape"]) != (PATCH_H, PATCH_W):
                raise ValueError(f"{path}: patch {tuple(d['patch_shape'])} is not {(PATCH_H, PATCH_W)}")
            return cls(np.asarray(d["weights"], np.float64), float(d["bias"]), float(d["threshold_logit"]),
                       str(d["anchor"]))

    def logit(self, features: np.ndarray) -> float:
        """The regression's log-odds of one feature vector."""
        return float(np.asarray(features, np.float64) @ self.weights + self.bias)


@lru_cache(maxsize=4)
def mouth_model(path: str = str(MOUTH_MODEL)) -> MouthModel:
    """The shipped mouth model (cached)."""
    return MouthModel.load(path)


def mouth_open_logit(crop_rgb: np.ndarray, mesh_xy_crop_px: np.ndarray, model: MouthModel | None = None) -> float:
    """Log-odds of an open mouth, averaged over the face and its mirror image."""
    model = model or mouth_model()
    return 0.5 * sum(model.logit(mouth_features(crop_rgb, mesh_xy_crop_px, flip, model.anchor))
                     for flip in (False, True))


def mouth_open_probability(crop_rgb: np.ndarray, mesh_xy_crop_px: np.ndarray,
                           model: MouthModel | None = None) -> float:
    """P(mouth open) of a stored face from its aligned crop and its mesh in crop pixels (468x2 or 468x3)."""
    return float(1.0 / (1.0 + np.exp(-mouth_open_logit(crop_rgb, mesh_xy_crop_px, model))))
