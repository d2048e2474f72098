"""Face-swap autoencoders: 'original' (shared encoder, one decoder per identity) and 'liae' (shared encoder
and decoder, separate inter layers, after DeepFaceLab's LIAE). Upscaling by conv + pixel shuffle.

Identities: A is the face to replace, B the face to paste in. ``forward(x, "A")`` reconstructs A's face,
``swap(x_a)`` renders A's pose and expression as B.
"""
from __future__ import annotations

import torch
from torch import nn

from train.config import ModelConfig


def _down(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 5, 2, 2), nn.LeakyReLU(0.1, inplace=True))


class Upscale(nn.Sequential):
    """Conv to 4x channels, then pixel shuffle: doubles the side."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout * 4, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True), nn.PixelShuffle(2))


class Encoder(nn.Module):
    """Four stride-2 convolutions: (3, S, S) -> (8*ch, S/16, S/16) flattened."""

    def __init__(self, ch: int):
        super().__init__()
        self.net = nn.Sequential(_down(3, ch), _down(ch, ch * 2), _down(ch * 2, ch * 4), _down(ch * 4, ch * 8), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Inter(nn.Module):
    """Dense bottleneck, then back to a (ch, S/8, S/8) feature map."""

    def __init__(self, in_features: int, ae_dims: int, side: int, ch: int):
        super().__init__()
        self.side, self.ch = side, ch
        self.dense = nn.Sequential(nn.Linear(in_features, ae_dims), nn.Linear(ae_dims, side * side * ch))
        self.up = Upscale(ch, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.dense(x).view(-1, self.ch, self.side, self.side))


class Decoder(nn.Module):
    """(cin, S/8, S/8) -> RGB (sigmoid) and mask (sigmoid) at S."""

    def __init__(self, cin: int, ch: int):
        super().__init__()
        self.net = nn.Sequential(Upscale(cin, ch * 4), Upscale(ch * 4, ch * 2), Upscale(ch * 2, ch))
        self.rgb = nn.Conv2d(ch, 3, 5, 1, 2)
        self.mask = nn.Conv2d(ch, 1, 5, 1, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(x)
        return torch.sigmoid(self.rgb(h)), torch.sigmoid(self.mask(h))


class FaceSwapModel(nn.Module):
    """Both architectures behind one interface: forward(x, identity) and swap(x, to)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c, s = config, config.size // 16
        self.encoder = Encoder(c.enc_ch)
        flat = c.enc_ch * 8 * s * s
        inter_ch = c.dec_ch * 8
        if c.arch == "original":
            self.inter = Inter(flat, c.ae_dims, s, inter_ch)
            self.decoders = nn.ModuleDict({"A": Decoder(inter_ch, c.dec_ch), "B": Decoder(inter_ch, c.dec_ch)})
        else:
            self.inter_ab = Inter(flat, c.ae_dims, s, inter_ch)  # both identities
            self.inter_a = Inter(flat, c.ae_dims, s, inter_ch)  # A only
            self.decoder = Decoder(inter_ch * 2, c.dec_ch)

    def _code(self, x: torch.Tensor, identity: str) -> torch.Tensor:
        e = self.encoder(x)
        if identity == "A":
            return torch.cat([self.inter_a(e), self.inter_ab(e)], 1)
        ab = self.inter_ab(e)
        return torch.cat([ab, ab], 1)

    def forward(self, x: torch.Tensor, identity: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruct faces of one identity: (rgb, mask), both in [0, 1]."""
        if self.config.arch == "original":
            return self.decoders[identity](self.inter(self.encoder(x)))
        return self.decoder(self._code(x, identity))

    @torch.no_grad()
    def swap(self, x: torch.Tensor, to: str = "B") -> tuple[torch.Tensor, torch.Tensor]:
        """Render faces (of the other identity) as identity ``to``."""
        if self.config.arch == "original":
            return self.decoders[to](self.inter(self.encoder(x)))
        e = self.encoder(x)
        if to == "B":  # A's expression through the shared inter only: decoded as B
            ab = self.inter_ab(e)
            return self.decoder(torch.cat([ab, ab], 1))
        return self.decoder(torch.cat([self.inter_a(e), self.inter_ab(e)], 1))
