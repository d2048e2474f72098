"""What a training run is told: the model's architecture and sizes (:class:`ModelConfig`) and the run's settings
(:class:`TrainSettings`) — the one definition of their choices and defaults (the CLI reads them here, without
torch)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

ARCHS = ("original", "liae")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and sizes; stored next to the weights."""

    arch: str = "original"
    size: int = 64
    enc_ch: int = 32
    ae_dims: int = 256
    dec_ch: int = 32

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown architecture {self.arch!r} (use {', '.join(ARCHS)})")
        if self.size not in (64, 128, 256):
            raise ValueError(f"size must be 64, 128 or 256, got {self.size}")

    def to_dict(self) -> dict:
        """Plain form for JSON metadata."""
        return asdict(self)


@dataclass
class TrainSettings:
    """Everything a run needs; stored in the model folder as train.json."""

    a: str
    b: str
    model_dir: str
    arch: str = "original"
    size: int = 64
    batch: int = 16
    iters: int = 1000
    lr: float = 5e-5
    seed: int = 0
    enc_ch: int = 32
    ae_dims: int = 256
    dec_ch: int = 32
    mask_erode: int = 0
    feature_weight: float = 3.0
    save_every: int = 250
    preview_every: int = 100
    keep: int = 3
    workers: int = 1
    device: str = "auto"
    resume: bool = True

    def model_config(self) -> ModelConfig:
        """The architecture part."""
        return ModelConfig(self.arch, self.size, self.enc_ch, self.ae_dims, self.dec_ch)
