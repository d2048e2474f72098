"""A face-set's own occlusion mask (DeepFaceLab's XSeg idea): a small U-Net trained on the set's faces.

Targets are real labels where the set has them (masks imported from faceswap / DeepFaceLab, masks a user
fixed) and the landmark hull elsewhere; every batch pastes synthetic occluders over the faces — textures cut
from the non-face parts of the same crops in random shapes, real hands found by the hand detector, and plain
objects (sticks, discs, a microphone-like bar + ball) — and takes them out of the target. The network so
learns "face skin and features of this set" against "anything in front of it".

Pure torch/numpy: no FiftyOne here (``curate.masks.learn`` reads and writes the dataset).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

KIND = "faceset-masknet"


class _Block(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MaskNet(nn.Module):
    """U-Net: RGB in [0, 1] (N, 3, S, S) -> mask logits (N, 1, S, S); S divisible by 16."""

    def __init__(self, width: int = 16, coverage: float | None = None):
        super().__init__()
        chans = [width, width * 2, width * 4, width * 8]
        self.width = width
        self.coverage = coverage  # of the crops it learned on (None: unknown); other crops are re-aligned to it
        self.down = nn.ModuleList([_Block(3, chans[0]), _Block(chans[0], chans[1]), _Block(chans[1], chans[2]),
                                   _Block(chans[2], chans[3])])
        self.mid = _Block(chans[3], chans[3])
        self.up = nn.ModuleList([_Block(chans[3] * 2, chans[2]), _Block(chans[2] * 2, chans[1]),
                                 _Block(chans[1] * 2, chans[0]), _Block(chans[0] * 2, chans[0])])
        self.out = nn.Conv2d(chans[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.mid(x)
        for block, skip in zip(self.up, reversed(skips)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.out(x)


# --- synthetic occluders --------------------------------------------------------------------------------------

@dataclass
class OccluderBank:
    """What gets pasted over faces: texture patches (from non-face parts of the set's crops), hand cut-outs, and
    the real occluders of faces with real labels (what a user marked as not face inside the hull)."""

    textures: list[np.ndarray] = field(default_factory=list)
    hands: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (rgb, mask) pairs
    cutouts: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (rgb, mask) pairs

    @staticmethod
    def from_crops(crops: np.ndarray, face_masks: np.ndarray, rng: np.random.Generator, count: int = 300) -> OccluderBank:
        """Texture patches cut where the face masks are empty (background, hair, clothes, microphones...)."""
        bank = OccluderBank()
        n, size = len(crops), crops.shape[1]
        for _ in range(count * 4):
            if len(bank.textures) >= count or n == 0:
                break
            i = int(rng.integers(n))
            side = int(rng.integers(size // 6, size // 3))
            x, y = (int(v) for v in rng.integers(0, size - side, 2))
            if face_masks[i, y:y + side, x:x + side].mean() < 0.05:
                bank.textures.append(crops[i, y:y + side, x:x + side].copy())
        return bank


def random_shape(size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 (size, size) mask of one occluder shape: polygon, ellipse, finger strokes, or a microphone."""
    mask = np.zeros((size, size), np.uint8)
    c = rng.uniform(0.25, 0.75, 2) * size
    r = rng.uniform(0.12, 0.35) * size
    kind = rng.integers(4)
    if kind == 0:  # irregular polygon
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(4, 9))))
        radii = r * rng.uniform(0.5, 1.0, len(angles))
        pts = np.stack([c[0] + radii * np.cos(angles), c[1] + radii * np.sin(angles)], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
    elif kind == 1:  # ellipse
        cv2.ellipse(mask, (int(c[0]), int(c[1])), (int(r), int(r * rng.uniform(0.3, 1.0))), float(rng.uniform(0, 180)),
                    0, 360, 255, -1)
    elif kind == 2:  # fingers: parallel thick strokes from one side
        angle = rng.uniform(0, 2 * np.pi)
        d = np.array([np.cos(angle), np.sin(angle)])
        n = np.array([-d[1], d[0]])
        thick = max(int(r * rng.uniform(0.25, 0.4)), 2)
        for k in range(int(rng.integers(1, 5))):
            base = c + n * (k - 1.5) * thick * 1.2
            a, b = base - d * r * 1.5, base + d * r * rng.uniform(0.2, 0.9)
            cv2.line(mask, tuple(int(v) for v in a), tuple(int(v) for v in b), 255, thick)
    else:  # microphone: a bar from the frame edge with a ball on top
        top = c
        bottom = np.array([c[0] + rng.uniform(-0.3, 0.3) * size, size * 1.2])
        cv2.line(mask, tuple(int(v) for v in top), tuple(int(v) for v in bottom), 255, max(int(r * 0.35), 2))
        cv2.circle(mask, (int(top[0]), int(top[1])), max(int(r * 0.6), 2), 255, -1)
    return mask


def _fill(shape_mask: np.ndarray, size: int, rng: np.random.Generator, bank: OccluderBank) -> np.ndarray:
    """An RGB float image to show through an occluder shape: a bank texture, a colour, or a gradient."""
    choice = rng.random()
    if bank.textures and choice < 0.6:
        tex = bank.textures[int(rng.integers(len(bank.textures)))]
        return cv2.resize(tex, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    colour = rng.uniform(0, 1, 3).astype(np.float32)
    if choice < 0.8:
        return np.broadcast_to(colour, (size, size, 3)).copy()
    ramp = np.linspace(0.6, 1.2, size, dtype=np.float32)[None, :, None]
    return np.clip(colour * (ramp if rng.random() < 0.5 else ramp.transpose(1, 0, 2)), 0, 1)


def _warped(rgb: np.ndarray, mask: np.ndarray, size: int, angle: float, scale: float,
            shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A cut-out (uint8 crop + mask) resized to ``size``, turned, scaled and shifted: float RGB and alpha."""
    m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    m[:, 2] += shift
    rgb = cv2.warpAffine(cv2.resize(rgb, (size, size)), m, (size, size)).astype(np.float32) / 255.0
    return rgb, cv2.warpAffine(cv2.resize(mask, (size, size)), m, (size, size)).astype(np.float32) / 255.0


def occlude(image: np.ndarray, target: np.ndarray, rng: np.random.Generator, bank: OccluderBank) -> tuple[np.ndarray, np.ndarray]:
    """Paste one synthetic occluder over a float RGB face; the target loses the occluded pixels."""
    size = image.shape[0]
    pick = rng.random()
    if bank.cutouts and pick < 0.3:  # a real occluder, near where it was (aligned crops: the same place)
        rgb, mask = bank.cutouts[int(rng.integers(len(bank.cutouts)))]
        rgb, alpha = _warped(rgb, mask, size, float(rng.uniform(-15, 15)), rng.uniform(0.9, 1.1),
                             rng.uniform(-0.1, 0.1, 2) * size)
    elif bank.hands and pick < (0.55 if bank.cutouts else 0.35):
        rgb, mask = bank.hands[int(rng.integers(len(bank.hands)))]
        rgb, alpha = _warped(rgb, mask, size, float(rng.uniform(-40, 40)), rng.uniform(0.6, 1.2),
                             rng.uniform(-0.25, 0.25, 2) * size + np.array([0, 0.15 * size]))
    else:
        alpha = random_shape(size, rng).astype(np.float32) / 255.0
        rgb = _fill(alpha, size, rng, bank)
        shade = 1.0 - 0.25 * rng.random() * np.linspace(0, 1, size, dtype=np.float32)[None, :, None]
        rgb = np.clip(rgb * shade, 0, 1)
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0)[..., None]
    out = image * (1 - alpha) + rgb * alpha
    return out.astype(np.float32), target * (1.0 - (alpha[..., 0] > 0.5))


# --- training and prediction ----------------------------------------------------------------------------------

@dataclass
class MaskTrainSettings:
    """How a mask network is trained."""

    size: int = 128
    iters: int = 1500
    batch: int = 16
    lr: float = 2e-3
    width: int = 16
    occlude_p: float = 0.7
    real_share: float = 0.3  # at least this share of each batch from faces with real labels, when there are any
    seed: int = 0
    device: str = "auto"


def _augment(image: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    size = image.shape[0]
    if rng.random() < 0.5:
        image, target = image[:, ::-1], target[:, ::-1]
    m = cv2.getRotationMatrix2D((size / 2, size / 2), float(rng.uniform(-12, 12)), float(rng.uniform(0.92, 1.08)))
    m[:, 2] += rng.uniform(-0.05, 0.05, 2) * size
    image = cv2.warpAffine(np.ascontiguousarray(image), m, (size, size), borderMode=cv2.BORDER_REFLECT)
    target = cv2.warpAffine(np.ascontiguousarray(target), m, (size, size), flags=cv2.INTER_NEAREST)
    gain = rng.uniform(0.8, 1.2, 3).astype(np.float32)
    return np.clip(image * gain + rng.uniform(-0.06, 0.06), 0, 1).astype(np.float32), target


UNKNOWN = 0.5  # target value of pixels no label vouches for: left out of the loss


def _loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    known = (target != UNKNOWN).float()
    bce = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * known).sum() / known.sum().clamp(min=1)
    prob = torch.sigmoid(logits) * known
    target = target * known
    dice = 1 - (2 * (prob * target).sum((1, 2, 3)) + 1) / (prob.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    return bce + dice.mean()


def sampling_weights(real: np.ndarray | None, n: int, share: float) -> np.ndarray:
    """Per-face sampling probabilities giving faces with real labels at least ``share`` of the draws."""
    if real is None or not np.any(real) or np.all(real):
        return np.full(n, 1.0 / n)
    real = np.asarray(real, bool)
    frac = max(share, real.mean())
    return np.where(real, frac / real.sum(), (1 - frac) / (~real).sum())


def train_masknet(images: np.ndarray, targets: np.ndarray, bank: OccluderBank, settings: MaskTrainSettings,
                  progress: Callable[[int, float], None] | None = None,
                  real: np.ndarray | None = None) -> tuple[MaskNet, list[float]]:
    """Train on uint8 (N, S, S, 3) crops and float (N, S, S) targets at ``settings.size``; returns (net, losses).
    Faces with real labels (``real``) are drawn more often: few hand-fixed masks teach what hull targets cannot."""
    from curate.core.device import torch_device

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    device = torch_device(settings.device)
    size = settings.size
    imgs = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images]).astype(np.float32) / 255
    # 0 (not face), 1 (face), UNKNOWN (no loss): resized and rounded to those three values
    tgts = np.stack([np.round(2 * cv2.resize(t.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)) / 2
                     for t in targets]).astype(np.float32)
    net = MaskNet(settings.width).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=max(settings.iters, 1))
    losses = []
    net.train()
    weights = sampling_weights(real, len(imgs), settings.real_share)
    for it in range(settings.iters):
        xs, ys = [], []
        for i in rng.choice(len(imgs), size=settings.batch, p=weights):
            x, y = _augment(imgs[i], tgts[i], rng)
            if rng.random() < settings.occlude_p:
                x, y = occlude(x, y, rng, bank)
            xs.append(x)
            ys.append(y)
        x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).to(device)
        y = torch.from_numpy(np.stack(ys)[:, None].astype(np.float32)).to(device)
        loss = _loss(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(it + 1, losses[-1])
    net.eval()
    return net, losses


RECROP_TOLERANCE = 0.02  # relative coverage difference beyond which a crop is re-aligned for the network


def _recrop(net: MaskNet, image: np.ndarray, landmarks: np.ndarray | None) -> np.ndarray | None:
    """The crop-to-crop matrix re-aligning ``image`` to the coverage the network learned on, or None when it is
    already framed like its training crops (or nothing says otherwise)."""
    if net.coverage is None or landmarks is None:
        return None
    from curate.core.align import alignment_matrix, estimate_coverage

    side = image.shape[0]
    if abs(estimate_coverage(landmarks, side) / net.coverage - 1) <= RECROP_TOLERANCE:
        return None
    return alignment_matrix(landmarks, side, net.coverage)


@torch.no_grad()
def predict_masks(net: MaskNet, images: Sequence[np.ndarray], size: int, landmarks: Sequence[np.ndarray] | None = None,
                  batch: int = 32) -> list[np.ndarray]:
    """float (H, W) masks in [0, 1] of uint8 RGB crops (H, W, 3; sizes may differ), run at the net's ``size``. With
    the crops' 68 ``landmarks`` (crop px), crops framed unlike the network's training crops (another coverage: a
    DeepFaceLab set, a model trained on another export) are re-aligned to its framing and the mask mapped back."""
    device = next(net.parameters()).device
    out: list[np.ndarray] = []
    for k in range(0, len(images), batch):
        chunk = list(images[k:k + batch])
        moves = [_recrop(net, im, None if landmarks is None else np.asarray(landmarks[k + j]))
                 for j, im in enumerate(chunk)]
        chunk = [im if m is None else cv2.warpAffine(im, m, im.shape[1::-1], flags=cv2.INTER_LINEAR,
                                                     borderMode=cv2.BORDER_REFLECT) for im, m in zip(chunk, moves)]
        x = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in chunk]).astype(np.float32) / 255
        prob = torch.sigmoid(net(torch.from_numpy(x).permute(0, 3, 1, 2).to(device)))[:, 0].cpu().numpy()
        for p, m, im in zip(prob, moves, chunk):
            wh = im.shape[1::-1]
            p = cv2.resize(p, wh, interpolation=cv2.INTER_LINEAR)
            p = p if m is None else cv2.warpAffine(p, m, wh, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            out.append(np.clip(p, 0, 1))
    return out


def save_masknet(path: Path, net: MaskNet, size: int, info: dict[str, Any] | None = None) -> Path:
    """Weights as safetensors with the network's kind, width and input size in the header."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"kind": KIND, "width": str(net.width), "size": str(size), "info": json.dumps(info or {})}
    if net.coverage is not None:
        meta["coverage"] = str(net.coverage)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def load_masknet(path: Path, device: str = "auto") -> tuple[MaskNet, int]:
    """A saved mask network (header checked first; never unpickles) and its input size."""
    from safetensors.torch import load_file

    from curate.core.device import torch_device
    from curate.core.safetensors_file import CheckpointError, read_header

    meta = read_header(Path(path)).get("__metadata__") or {}
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{path} is not a faceset mask network (train one with `faceset mask train`)")
    try:
        size = int(meta["size"])
        net = MaskNet(int(meta["width"]), float(meta["coverage"]) if meta.get("coverage") else None)
        net.load_state_dict(load_file(str(path)))
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"mask network {path} does not match its header ({exc})") from None
    net.to(torch_device(device)).eval()
    return net, size
