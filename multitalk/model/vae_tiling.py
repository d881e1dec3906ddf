"""Tiled VAE decode: the latent is decoded in overlapping spatial tiles, blended where they overlap.

At 720p one decoder activation of a 4-frame block is 96+ channels x 4 x 720 x 1280 fp32 (≈ 1.4 GB) and several
are alive at once; decoding 2-4 overlapping tiles bounds that by the tile's size. Each tile keeps its own causal
cache across latent frames, so the result still streams one latent frame at a time. Tiles overlap by `overlap`
latent pixels and are blended with linear ramps across the overlap (weights sum to 1), which hides the seams; the
decoder's middle attention block sees one tile instead of the whole frame, so tiled output is close to, not equal
to, the untiled one (measured on the tiny VAE in tests/multitalk/model/test_vae.py). Tiling therefore changes
the output and is part of the chunk keys when on.

References: diffusers `AutoencoderKLWan.tiled_decode` and ComfyUI-WanVideoWrapper (the same overlap-and-blend idea).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class VAETiles:
    """Tile size and overlap, in latent pixels (x8 in the video)."""

    tile: int = 64  # 512 video pixels: 6 tiles at 720p (90 x 160 latent), 2 at 480p
    overlap: int = 16  # 128 video pixels of linear blend

    def __post_init__(self) -> None:
        if not 0 < self.overlap < self.tile:
            raise ValueError(f"VAE tile overlap must be between 0 and the tile size {self.tile}, got {self.overlap}")

    def starts(self, size: int) -> list[int]:
        """Tile starts along one axis: stride tile - overlap, the last tile flush with the end."""
        if size <= self.tile:
            return [0]
        stride = self.tile - self.overlap
        starts = list(range(0, size - self.tile, stride))
        return [*starts, size - self.tile]

    def to_json(self) -> dict[str, int]:
        return {"tile": self.tile, "overlap": self.overlap}


def _ramp(length: int, start_overlap: int, end_overlap: int, scale: int) -> torch.Tensor:
    """1-D blend weights over a tile of `length` latent pixels (x scale), ramping up/down across the overlaps."""
    n = length * scale
    weight = torch.ones(n)
    for overlap, flip in ((start_overlap, False), (end_overlap, True)):
        if overlap:
            m = overlap * scale
            ramp = (torch.arange(m, dtype=torch.float32) + 0.5) / m
            if flip:
                weight[n - m :] = torch.minimum(weight[n - m :], ramp.flip(0))
            else:
                weight[:m] = torch.minimum(weight[:m], ramp)
    return weight


@torch.no_grad()
def tiled_decode_stream(vae, z: torch.Tensor, tiles: VAETiles, clamp: bool = True) -> Iterator[torch.Tensor]:
    """Like `WanVAE.decode_stream` on an already de-normalised latent z (B, z_dim, F, h, w), tile by tile."""
    from multitalk.model.vae import FeatureCache

    s = vae.config.spatial_factor
    _, _, frames, h, w = z.shape
    rows, cols = tiles.starts(h), tiles.starts(w)
    spans = [(r, c) for r in rows for c in cols]
    caches = {span: FeatureCache() for span in spans}
    weights = {}
    for r, c in spans:
        th, tw = min(tiles.tile, h), min(tiles.tile, w)
        # overlaps with the neighbours (the last tile may overlap its neighbour by more than `overlap`)
        up = rows[rows.index(r) - 1] + th - r if rows.index(r) > 0 else 0
        down = r + th - rows[rows.index(r) + 1] if rows.index(r) + 1 < len(rows) else 0
        left = cols[cols.index(c) - 1] + tw - c if cols.index(c) > 0 else 0
        right = c + tw - cols[cols.index(c) + 1] if cols.index(c) + 1 < len(cols) else 0
        weights[(r, c)] = (_ramp(th, up, down, s)[:, None] * _ramp(tw, left, right, s)[None, :]).to(z.device)
    for f in range(frames):
        out = None
        total = None
        for r, c in spans:
            th, tw = min(tiles.tile, h), min(tiles.tile, w)
            cache = caches[(r, c)]
            cache.start_chunk()
            decoded = vae.decoder(vae.conv2(z[:, :, f : f + 1, r : r + th, c : c + tw]), cache)  # (B,3,t,8th,8tw)
            if out is None:
                out = decoded.new_zeros(*decoded.shape[:3], h * s, w * s)
                total = decoded.new_zeros(h * s, w * s)
            weight = weights[(r, c)]
            out[..., r * s : (r + th) * s, c * s : (c + tw) * s] += decoded * weight
            total[r * s : (r + th) * s, c * s : (c + tw) * s] += weight
        out /= total
        yield out.clamp_(-1.0, 1.0) if clamp else out
