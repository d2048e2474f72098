"""What a conversion run is told: the one definition of its choices and defaults (the CLI reads them here)."""
from __future__ import annotations

from dataclasses import dataclass, field

from convert.blend import BLENDS, parse_mask
from convert.color import COLOR_TRANSFERS

DIRECTIONS = {"a2b": "B", "b2a": "A"}  # which decoder renders the swap
FORMATS = ("mp4", "png")


@dataclass
class ConvertSettings:
    """Everything a conversion run needs (the CLI options)."""

    direction: str = "a2b"
    only: list[str] = field(default_factory=list)
    threshold: float | None = None
    color: str = "rct"
    mask: str = "hull"
    mask_model: str | None = None  # the face-set's mask network (`faceset mask train`), for --mask learned
    mask_erode: int | None = None
    mask_blur: int | None = None
    blend: str = "alpha"
    every_frame_detect: bool = False
    detect_every: int = 5
    smooth: float = 0.5
    fmt: str = "mp4"
    alpha: bool = False
    device: str = "auto"
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.alpha:  # an alpha channel needs PNG frames
            self.fmt = "png"
        self.mask = ",".join(parse_mask(self.mask))
        if "learned" in self.mask.split(",") and not self.mask_model:
            raise ValueError("--mask learned needs --mask-model FILE (the network `faceset mask train` saved)")
        for value, allowed, what in ((self.color, COLOR_TRANSFERS, "colour transfer"),
                                     (self.blend, BLENDS, "blend"), (self.fmt, FORMATS, "format")):
            if value not in allowed:
                raise ValueError(f"unknown {what} {value!r} (use {', '.join(allowed)})")
