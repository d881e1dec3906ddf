"""The Wan 2.1 causal 3-D VAE: video <-> 16-channel latents at 4x8x8 compression.

The encoder maps a clip of 1 + 4n frames to 1 + n latent frames: frame 0 alone, then each group of 4 frames.
Every temporal convolution is causal (all its time padding is in front), and between time chunks each layer
keeps the last frames it saw in a small fixed-size cache, so a long clip is processed chunk by chunk with the
same result as one big causal pass. The decoder mirrors this one latent frame at a time (1 output frame for
latent frame 0, 4 for each later one), which lets `WanVAE.decode_stream` hand frames out as they are made.

Module and parameter names follow the official implementation, so `Wan2.1_VAE.pth` loads strictly with no
renaming table. The VAE runs in float32, as the official pipeline does.

References:
- Wan-Video/Wan2.1, `wan/modules/vae.py` (`WanVAE_`, `WanVAE`): the architecture, caching and normalisation.
- The `vae` parity tests in tests/multitalk/model/test_vae.py (fixtures from the official code).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from safetensors.torch import load_file
from torch import nn

from multitalk.model.vae_tiling import VAETiles, tiled_decode_stream

logger = logging.getLogger(__name__)

CACHE_T = 2  # frames a causal 3x3x3 conv needs from the previous chunk (its front time padding)

# Per-channel statistics of the Wan 2.1 latent space; `encode` returns (mu - mean) / std.
WAN21_LATENT_MEAN = (
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
)  # fmt: skip
WAN21_LATENT_STD = (
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
)  # fmt: skip


@dataclass(frozen=True)
class VAEConfig:
    """Constructor values of the official `WanVAE_` plus the latent normalisation constants."""

    dim: int = 96  # base channel count; encoder stage i has dim * dim_mult[i] channels
    z_dim: int = 16  # latent channels (the encoder emits 2 * z_dim: posterior mean and log-variance)
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)  # channel multiplier per resolution stage
    num_res_blocks: int = 2  # residual blocks per encoder stage (the decoder uses one more)
    attn_scales: tuple[float, ...] = ()  # resolution scales (1, 1/2, ...) that get an extra attention block
    temperal_downsample: tuple[bool, ...] = (False, True, True)  # per stage transition; official spelling
    dropout: float = 0.0  # inside residual blocks; inactive in eval mode
    latent_mean: tuple[float, ...] = WAN21_LATENT_MEAN  # z_dim values
    latent_std: tuple[float, ...] = WAN21_LATENT_STD  # z_dim values

    def __post_init__(self) -> None:
        if len(self.temperal_downsample) != len(self.dim_mult) - 1:
            raise ValueError(
                f"temperal_downsample has {len(self.temperal_downsample)} entries but dim_mult "
                f"{list(self.dim_mult)} needs {len(self.dim_mult) - 1} (one per stage transition)"
            )
        for name in ("latent_mean", "latent_std"):
            if len(getattr(self, name)) != self.z_dim:
                raise ValueError(f"{name} has {len(getattr(self, name))} values, expected z_dim={self.z_dim}")
        if any(s == 0 for s in self.latent_std):
            raise ValueError(f"latent_std must be non-zero, got {list(self.latent_std)}")

    @property
    def spatial_factor(self) -> int:
        """Pixels per latent cell along H and W (8 for Wan 2.1)."""
        return 2 ** (len(self.dim_mult) - 1)

    @property
    def temporal_factor(self) -> int:
        """Frames per latent frame after the first (4 for Wan 2.1)."""
        return 2 ** sum(bool(t) for t in self.temperal_downsample)

    @classmethod
    def from_official(
        cls,
        kwargs: Mapping,
        latent_mean: Sequence[float] | None = None,
        latent_std: Sequence[float] | None = None,
    ) -> VAEConfig:
        """Builds a config from the official `WanVAE_(**kwargs)` values (e.g. a parity json `config`)."""
        known = {f.name for f in fields(cls)} - {"latent_mean", "latent_std"}
        unknown = set(kwargs) - known
        if unknown:
            raise ValueError(f"unknown VAE config keys {sorted(unknown)} (known: {sorted(known)})")
        values = dict(kwargs)
        for key in ("dim_mult", "attn_scales", "temperal_downsample"):
            if key in values:
                values[key] = tuple(values[key])
        if latent_mean is not None:
            values["latent_mean"] = tuple(float(v) for v in latent_mean)
        if latent_std is not None:
            values["latent_std"] = tuple(float(v) for v in latent_std)
        return cls(**values)


VAE_CONFIGS: dict[str, VAEConfig] = {
    "wan2.1": VAEConfig(),  # Wan2.1_VAE.pth (~127 M parameters)
}


# ----------------------------------------------------------------------------------------------------------
# Pure helpers
# ----------------------------------------------------------------------------------------------------------


def _frames_to_batch(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B*T, C, H, W), so 2-D layers run per frame."""
    return rearrange(x, "b c t h w -> (b t) c h w")


def _batch_to_frames(x: torch.Tensor, t: int) -> torch.Tensor:
    """(B*T, C, H, W) -> (B, C, T, H, W)."""
    return rearrange(x, "(b t) c h w -> b c t h w", t=t)


def _trailing_frames(x: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
    """The last CACHE_T frames of a layer input, topped up from the previous chunk if this one is shorter."""
    tail = x[:, :, -CACHE_T:]
    if tail.shape[2] < CACHE_T and previous is not None:
        return torch.cat([previous[:, :, -1:], tail], dim=2)
    return tail.clone()  # a copy, so the cache does not keep the whole chunk alive through a view


# ----------------------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------------------


class FeatureCache:
    """The trailing input frames of every causal layer, carried from one time chunk to the next.

    Layers visit their slots in the same order in every chunk. Each slot is overwritten, never appended to,
    and holds at most CACHE_T frames, so the cache stays the same small size however long the clip is.
    """

    def __init__(self) -> None:
        self._slots: list[torch.Tensor | None] = []
        self._cursor = 0

    def __len__(self) -> int:
        """Number of slots (one per causal layer seen so far)."""
        return len(self._slots)

    def max_frames(self) -> int:
        """The most frames any slot holds (at most CACHE_T)."""
        return max((s.shape[2] for s in self._slots if s is not None), default=0)

    def start_chunk(self) -> None:
        self._cursor = 0

    def previous(self) -> torch.Tensor | None:
        """What the current layer stored in the previous chunk (None in the first chunk)."""
        if self._cursor == len(self._slots):
            self._slots.append(None)
        return self._slots[self._cursor]

    def store(self, frames: torch.Tensor) -> None:
        """Replaces the current layer's slot and moves on to the next layer."""
        self._slots[self._cursor] = frames
        self._cursor += 1


class CausalConv3d(nn.Conv3d):
    """Conv3d whose time padding (2 * p) is all in front; a cache of earlier frames replaces part of it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        pt, ph, pw = self.padding
        self._causal_padding = (pw, pw, ph, ph, 2 * pt, 0)  # F.pad order: W, H, T (front only)
        self.padding = (0, 0, 0)

    def forward(self, x: torch.Tensor, cache: torch.Tensor | None = None) -> torch.Tensor:
        padding = list(self._causal_padding)
        if cache is not None and padding[4] > 0:
            x = torch.cat([cache.to(x.device), x], dim=2)  # (B, C, t_cache + T, H, W)
            padding[4] -= cache.shape[2]
        return super().forward(F.pad(x, padding))


def _cached_conv(conv: CausalConv3d, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
    """Runs a causal conv on one chunk, fed by (and then updating) its cache slot."""
    previous = cache.previous()
    out = conv(x, previous)
    cache.store(_trailing_frames(x, previous))
    return out


class RMSNorm(nn.Module):
    """L2 normalisation over channels, times sqrt(C) and a per-channel gain (official `RMS_norm`)."""

    def __init__(self, dim: int, images: bool = True) -> None:
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones((dim, 1, 1) if images else (dim, 1, 1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) * self.scale * self.gamma


class ResidualBlock(nn.Module):
    """(RMSNorm, SiLU, causal 3x3x3 conv) twice, plus a 1x1x1 shortcut when the channel count changes."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            RMSNorm(in_dim, images=False),
            nn.SiLU(),
            CausalConv3d(in_dim, out_dim, 3, padding=1),
            RMSNorm(out_dim, images=False),
            nn.SiLU(),
            nn.Dropout(dropout),
            CausalConv3d(out_dim, out_dim, 3, padding=1),
        )
        self.shortcut = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        h = self.shortcut(x)
        for layer in self.residual:
            x = _cached_conv(layer, x, cache) if isinstance(layer, CausalConv3d) else layer(x)
        return x + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over the H*W positions of each frame, with a residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = RMSNorm(dim)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)  # output channels are [q | k | v]
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        identity = x
        b, c, t, h, w = x.shape
        x = self.norm(_frames_to_batch(x))  # (B*T, C, H, W)
        qkv = self.to_qkv(x).reshape(b * t, 1, c * 3, h * w).permute(0, 1, 3, 2)  # (B*T, 1, HW, 3C)
        q, k, v = qkv.contiguous().chunk(3, dim=-1)  # each (B*T, 1, HW, C)
        x = F.scaled_dot_product_attention(q, k, v)  # (B*T, 1, HW, C)
        x = x.squeeze(1).permute(0, 2, 1).reshape(b * t, c, h, w)
        x = self.proj(x)
        return _batch_to_frames(x, t) + identity  # (B, C, T, H, W)


class Resample(nn.Module):
    """Spatial x2 up/down sampling, with an optional causal temporal x2 step (the `*3d` modes).

    - downsample: zero-pad right/bottom by 1, stride-2 3x3 conv. In 3-D mode a stride-2 time conv follows;
      it is skipped on the first chunk (frame 0 stays one frame) and later sees the previous chunk's last
      frame first.
    - upsample: nearest x2, 3x3 conv to half the channels. In 3-D mode a time conv first doubles the frames
      (channels [:C] -> frame 2t, [C:] -> frame 2t+1); it is skipped for latent frame 0 and afterwards starts
      from a zero history.
    """

    def __init__(self, dim: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        if mode in ("upsample2d", "upsample3d"):
            self.resample = nn.Sequential(
                nn.Upsample(scale_factor=(2.0, 2.0), mode="nearest-exact"),
                nn.Conv2d(dim, dim // 2, 3, padding=1),
            )
        elif mode in ("downsample2d", "downsample3d"):
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=(2, 2)))
        else:
            raise ValueError(f"unknown resample mode {mode!r} (known: upsample2d/3d, downsample2d/3d)")
        if mode == "upsample3d":
            self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        elif mode == "downsample3d":
            self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1), padding=(0, 0, 0))

    def _time_upsample(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        previous = cache.previous()
        if previous is None:
            # First latent frame: no time step. A zero history makes the next call zero-padded, as officially.
            cache.store(torch.zeros_like(x[:, :, -1:]))
            return x
        out = self.time_conv(x, previous)  # (B, 2C, T, H, W)
        cache.store(_trailing_frames(x, previous))
        return rearrange(out, "b (two c) t h w -> b c (t two) h w", two=2)  # the two halves interleave in time

    def _time_downsample(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        previous = cache.previous()
        cache.store(x[:, :, -1:].clone())
        if previous is None:
            return x  # first chunk: frame 0 alone stays one frame
        return self.time_conv(torch.cat([previous[:, :, -1:], x], dim=2))  # (B, C, T/2, H, W)

    def forward(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        if self.mode == "upsample3d":
            x = self._time_upsample(x, cache)
        t = x.shape[2]
        x = _batch_to_frames(self.resample(_frames_to_batch(x)), t)
        if self.mode == "downsample3d":
            x = self._time_downsample(x, cache)
        return x


# ----------------------------------------------------------------------------------------------------------
# Encoder and decoder
# ----------------------------------------------------------------------------------------------------------


class Encoder3d(nn.Module):
    """Video (B, 3, T, H, W) chunk -> (B, z_channels, T', H/8, W/8) chunk."""

    def __init__(self, config: VAEConfig, z_channels: int) -> None:
        super().__init__()
        dims = [config.dim * u for u in (1, *config.dim_mult)]
        scale = 1.0

        self.conv1 = CausalConv3d(3, dims[0], 3, padding=1)
        downsamples: list[nn.Module] = []
        for i, (in_dim, out_dim) in enumerate(itertools.pairwise(dims)):
            for _ in range(config.num_res_blocks):
                downsamples.append(ResidualBlock(in_dim, out_dim, config.dropout))
                if scale in config.attn_scales:
                    downsamples.append(AttentionBlock(out_dim))
                in_dim = out_dim
            if i != len(config.dim_mult) - 1:
                mode = "downsample3d" if config.temperal_downsample[i] else "downsample2d"
                downsamples.append(Resample(out_dim, mode=mode))
                scale /= 2.0
        self.downsamples = nn.Sequential(*downsamples)
        self.middle = nn.Sequential(
            ResidualBlock(dims[-1], dims[-1], config.dropout),
            AttentionBlock(dims[-1]),
            ResidualBlock(dims[-1], dims[-1], config.dropout),
        )
        self.head = nn.Sequential(
            RMSNorm(dims[-1], images=False), nn.SiLU(), CausalConv3d(dims[-1], z_channels, 3, padding=1)
        )

    def forward(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        x = _cached_conv(self.conv1, x, cache)
        for layer in (*self.downsamples, *self.middle):
            x = layer(x, cache)
        for layer in self.head:
            x = _cached_conv(layer, x, cache) if isinstance(layer, CausalConv3d) else layer(x)
        return x


class Decoder3d(nn.Module):
    """Latent (B, z_dim, 1, h, w) frame -> video (B, 3, 1 or 4, 8h, 8w) frames."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        mults = (config.dim_mult[-1], *config.dim_mult[::-1])
        dims = [config.dim * u for u in mults]
        temperal_upsample = config.temperal_downsample[::-1]
        scale = 1.0 / 2 ** (len(config.dim_mult) - 2)

        self.conv1 = CausalConv3d(config.z_dim, dims[0], 3, padding=1)
        self.middle = nn.Sequential(
            ResidualBlock(dims[0], dims[0], config.dropout),
            AttentionBlock(dims[0]),
            ResidualBlock(dims[0], dims[0], config.dropout),
        )
        upsamples: list[nn.Module] = []
        for i, (in_dim, out_dim) in enumerate(itertools.pairwise(dims)):
            if i > 0:
                in_dim = in_dim // 2  # the previous stage's upsample halved the channels
            for _ in range(config.num_res_blocks + 1):
                upsamples.append(ResidualBlock(in_dim, out_dim, config.dropout))
                if scale in config.attn_scales:
                    upsamples.append(AttentionBlock(out_dim))
                in_dim = out_dim
            if i != len(config.dim_mult) - 1:
                mode = "upsample3d" if temperal_upsample[i] else "upsample2d"
                upsamples.append(Resample(out_dim, mode=mode))
                scale *= 2.0
        self.upsamples = nn.Sequential(*upsamples)
        self.head = nn.Sequential(RMSNorm(dims[-1], images=False), nn.SiLU(), CausalConv3d(dims[-1], 3, 3, padding=1))

    def forward(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        x = _cached_conv(self.conv1, x, cache)
        for layer in (*self.middle, *self.upsamples):
            x = layer(x, cache)
        for layer in self.head:
            x = _cached_conv(layer, x, cache) if isinstance(layer, CausalConv3d) else layer(x)
        return x


# ----------------------------------------------------------------------------------------------------------
# Public model
# ----------------------------------------------------------------------------------------------------------


class WanVAE(nn.Module):
    """The Wan 2.1 VAE (official `WanVAE_` layout and key names) with chunked, cached encode and decode.

    - `encode(video (B, 3, T, H, W) in [-1, 1])` -> normalised latent (B, z_dim, 1 + (T-1)/4, H/8, W/8).
    - `decode(latent)` -> video (B, 3, 1 + 4(F-1), 8h, 8w) in [-1, 1].
    - `decode_stream(latent)` yields the same frames latent frame by latent frame (1, then 4 each).
    """

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__()
        self.config = config or VAE_CONFIGS["wan2.1"]
        z = self.config.z_dim
        self.encoder = Encoder3d(self.config, z_channels=2 * z)
        self.conv1 = CausalConv3d(2 * z, 2 * z, 1)  # -> [posterior mean | log-variance]
        self.conv2 = CausalConv3d(z, z, 1)
        self.decoder = Decoder3d(self.config)

    @classmethod
    def from_state_dict(
        cls,
        state_dict: Mapping[str, torch.Tensor],
        config: VAEConfig | None = None,
        device: torch.device | str = "cpu",
    ) -> WanVAE:
        """Builds the model on the meta device and loads the official weights strictly, in float32."""
        with torch.device("meta"):
            model = cls(config)
        weights = {k: v.to(device=device, dtype=torch.float32) for k, v in state_dict.items()}
        model.load_state_dict(weights, strict=True, assign=True)
        return model.eval().requires_grad_(False)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, config: VAEConfig | None = None, device: torch.device | str = "cpu"
    ) -> WanVAE:
        """Loads `Wan2.1_VAE.pth` (a torch state dict) or a `.safetensors` file with the same keys."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"VAE checkpoint not found: {path} (expected Wan2.1_VAE.pth)")
        logger.info("loading VAE weights from %s", path)
        if path.suffix == ".safetensors":
            state_dict = load_file(path, device=str(device))
        else:
            state_dict = torch.load(path, map_location=device, weights_only=True)
        return cls.from_state_dict(state_dict, config, device)

    @property
    def _param(self) -> torch.Tensor:
        return self.conv2.weight

    def _stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent mean and 1/std as (1, z_dim, 1, 1, 1) float32 (the official scale = [mean, 1/std])."""
        shape = (1, self.config.z_dim, 1, 1, 1)
        mean = torch.tensor(self.config.latent_mean, dtype=torch.float32, device=self._param.device)
        inv_std = 1.0 / torch.tensor(self.config.latent_std, dtype=torch.float32, device=self._param.device)
        return mean.view(shape), inv_std.view(shape)

    def _check_video(self, video: torch.Tensor) -> None:
        cfg = self.config
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"VAE.encode expects video (B, 3, T, H, W), got shape {tuple(video.shape)}")
        t, h, w = video.shape[2:]
        if (t - 1) % cfg.temporal_factor != 0:
            raise ValueError(
                f"VAE.encode needs 1 + {cfg.temporal_factor}n frames, got {t}; "
                f"trim or pad the clip to {1 + (t - 1) // cfg.temporal_factor * cfg.temporal_factor} frames"
            )
        if h % cfg.spatial_factor or w % cfg.spatial_factor:
            raise ValueError(
                f"VAE.encode needs height and width divisible by {cfg.spatial_factor}, got {h}x{w}; "
                "resize or crop the frames first"
            )

    def _check_latent(self, latent: torch.Tensor) -> None:
        if latent.ndim != 5 or latent.shape[1] != self.config.z_dim:
            raise ValueError(
                f"VAE.decode expects a latent (B, {self.config.z_dim}, F, h, w), got shape {tuple(latent.shape)}"
            )
        if latent.shape[2] < 1:
            raise ValueError("VAE.decode got a latent with 0 frames")

    @torch.no_grad()
    def encode(self, video: torch.Tensor, *, normalise: bool = True) -> torch.Tensor:
        """Posterior mean of `video` (B, 3, T, H, W) in [-1, 1]: (B, z_dim, 1 + (T-1)/4, H/8, W/8), float32.

        With `normalise` (the default) returns (mu - mean) / std, the latent the DiT works in.
        """
        self._check_video(video)
        x = video.to(device=self._param.device, dtype=torch.float32)
        step = self.config.temporal_factor
        cache = FeatureCache()
        means = []
        for start in range(0, x.shape[2], step):
            chunk = x[:, :, :1] if start == 0 else x[:, :, start - step + 1 : start + 1]  # frame 0, then 4s
            cache.start_chunk()
            h = self.encoder(chunk, cache)  # (B, 2z, t', H/8, W/8)
            means.append(self.conv1(h)[:, : self.config.z_dim])
        mu = torch.cat(means, dim=2)  # (B, z, F, H/8, W/8)
        if not normalise:
            return mu
        mean, inv_std = self._stats()
        return (mu - mean) * inv_std

    @torch.no_grad()
    def decode_stream(
        self, latent: torch.Tensor, *, clamp: bool = True, tiles: VAETiles | None = None
    ) -> Iterator[torch.Tensor]:
        """Decodes a normalised latent (B, z_dim, F, h, w) one latent frame at a time.

        Yields float32 (B, 3, 1, 8h, 8w) for latent frame 0, then (B, 3, 4, 8h, 8w) per later frame, clamped
        to [-1, 1] unless `clamp` is False. Only one latent frame's activations and the small causal cache are
        alive at a time, so callers can write frames out as they come. With `tiles`, each latent frame is
        decoded in overlapping spatial tiles (`vae_tiling.py`), which bounds the activations at 720p.
        """
        self._check_latent(latent)
        mean, inv_std = self._stats()
        z = latent.to(device=self._param.device, dtype=torch.float32) / inv_std + mean  # (B, z, F, h, w)
        if tiles is not None:
            yield from tiled_decode_stream(self, z, tiles, clamp)
            return
        cache = FeatureCache()
        for f in range(z.shape[2]):
            cache.start_chunk()
            frames = self.decoder(self.conv2(z[:, :, f : f + 1]), cache)  # (B, 3, 1 or 4, 8h, 8w)
            yield frames.clamp_(-1.0, 1.0) if clamp else frames

    @torch.no_grad()
    def decode(self, latent: torch.Tensor, *, clamp: bool = True) -> torch.Tensor:
        """Decodes a normalised latent (B, z_dim, F, h, w) to video (B, 3, 1 + 4(F-1), 8h, 8w), float32."""
        self._check_latent(latent)
        b, _, f, h, w = latent.shape
        s = self.config.spatial_factor
        total = 1 + self.config.temporal_factor * (f - 1)
        out = torch.empty(b, 3, total, h * s, w * s, dtype=torch.float32, device=self._param.device)
        t = 0
        for frames in self.decode_stream(latent, clamp=clamp):
            out[:, :, t : t + frames.shape[2]] = frames
            t += frames.shape[2]
        return out
