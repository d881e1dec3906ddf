"""The MultiTalk DiT: Wan2.1 I2V-14B with MultiTalk's audio cross-attention and L-RoPE.

One forward takes a batch of noisy video latents and returns the flow-matching velocity. The trunk (patch
embedding, self-attention with 3-D RoPE, text + CLIP-image cross-attention, FFN, AdaLN-style modulation from
the timestep) is Wan2.1 image-to-video. MultiTalk adds, in every block and without a timestep gate, an audio
cross-attention in which the tokens of latent frame f attend to the audio tokens of frame f only. With two
persons, Label RoPE (L-RoPE) binds each visual token to one speaker: a reference-attention map from the
block's own self-attention (queries of all tokens against the keys of latent frame 0, mass inside each
person mask) classifies the token, which gets a 1-D rotary position in its person's range; person i's audio
keys sit at the centre of that range.

Samples of one batch may have different person counts (the sampler's cond / drop-text passes use two
persons, the uncond pass one person with zero audio): the trunk is batched and the audio cross-attention
runs per group of samples with the same count.

Module and parameter names are the official checkpoint keys, so the released weights load with
`load_state_dict(strict=True)` and no renaming. Dtypes follow the official code: weights and the residual
stream in the parameter dtype (bf16 for the real model), norms in fp32, the timestep sinusoid in float64,
time embedding / modulation / head in fp32, 3-D RoPE rotation in float64, L-RoPE in fp32.

For step caching (TeaCache) the forward is split into `prepare` -> `run_blocks` -> `finish`: TeaCache reads
`DiTInputs.e0` (or `.e`) after `prepare`, and either runs the blocks or adds a cached residual to
`DiTInputs.x` before `finish`.

References:
- Wan-Video/Wan2.1 `wan/modules/model.py`; Wan Team, "Wan: Open and Advanced Large-Scale Video Generative
  Models" (2025), arXiv:2503.20314.
- MeiGen-AI/MultiTalk `wan/modules/multitalk_model.py`, `wan/modules/attention.py`,
  `wan/utils/multitalk_utils.py`; Kong et al., "Let Them Talk: Audio-Driven Multi-Person Conversational
  Video Generation" (2025), arXiv:2505.22647.
- tests/multitalk/model/test_dit.py (parity with the official code on its fixtures).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from multitalk.model.attention import attention
from multitalk.model.rope import apply_lrope, apply_rope_3d, rope_angle_tables, rope_grid_freqs

if TYPE_CHECKING:  # sequence parallel hooks (multitalk/distributed); the model runs without them
    from multitalk.distributed.sequence_parallel import SequenceShard

logger = logging.getLogger(__name__)

# The reference-attention map holds at most this many probabilities at once (per head group, per query
# chunk). At 480p x 81 frames a full fp32 map would be 40 heads x 32760 x 1560 values = 8 GB.
REF_ATTN_CHUNK_ELEMENTS = 2**26


@dataclass(frozen=True)
class DiTConfig:
    """Every size and constant of the DiT. Defaults are the released `multitalk-14b` model."""

    dim: int = 5120  # hidden size of the token stream
    ffn_dim: int = 13824  # FFN inner size
    freq_dim: int = 256  # size of the sinusoidal timestep embedding
    num_heads: int = 40  # attention heads (head dim = dim / num_heads)
    num_layers: int = 40  # transformer blocks
    in_dim: int = 36  # input channels: 16 noisy latent + 4 mask + 16 image-condition latent
    out_dim: int = 16  # output channels (latent channels)
    patch_size: tuple[int, int, int] = (1, 2, 2)  # (frames, rows, cols) per token
    text_dim: int = 4096  # T5 hidden size
    text_len: int = 512  # text tokens after zero padding
    eps: float = 1e-6  # eps of the block LayerNorms and of the q/k RMSNorms
    qk_norm: bool = True  # RMSNorm on q and k in self- and cross-attention
    cross_attn_norm: bool = True  # affine LayerNorm (`norm3`) before the text/image cross-attention
    aux_norm_eps: float = 1e-5  # eps of the img_emb LayerNorms and of audio_proj.norm (torch default)
    clip_tokens: int = 257  # CLIP image tokens prepended to the text tokens
    clip_dim: int = 1280  # CLIP token size
    audio_window: int = 5  # wav2vec frames per video frame (t-2..t+2)
    audio_blocks: int = 12  # stacked wav2vec layers per frame
    audio_channels: int = 768  # wav2vec hidden size
    audio_intermediate_dim: int = 512  # hidden size of audio_proj
    audio_output_dim: int = 768  # size of an audio token (input of kv_linear)
    audio_context_tokens: int = 32  # audio tokens per person per latent frame
    vae_scale: int = 4  # video frames per latent frame (VAE temporal stride)
    norm_input_visual: bool = True  # affine LayerNorm (`norm_x`) before the audio cross-attention
    norm_output_audio: bool = True  # LayerNorm (`audio_proj.norm`) on the audio tokens
    rope_theta: float = 10000.0  # 3-D RoPE base
    rope_positions: int = 1024  # 3-D RoPE positions per axis
    lrope_base: float = 10000.0  # L-RoPE base
    lrope_person1_range: tuple[float, float] = (0.0, 4.0)  # L-RoPE positions of person-1 tokens
    lrope_person2_range: tuple[float, float] = (20.0, 24.0)  # L-RoPE positions of person-2 tokens
    lrope_background: float = 12.0  # L-RoPE position of background tokens
    lrope_key_positions: tuple[float, float] = (2.0, 22.0)  # L-RoPE positions of person 1 / 2 audio keys
    ref_attn_head_groups: int = 2  # head groups averaged in the reference-attention map

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def audio_window_vf(self) -> int:
        """Window slots per later latent frame: 3 of the first frame, 1 of each middle one, 3 of the last."""
        return self.audio_window + self.vae_scale - 1

    def __post_init__(self) -> None:
        if self.dim % self.num_heads != 0 or self.head_dim % 2 != 0:
            raise ValueError(f"dim {self.dim} must split into {self.num_heads} heads of even size")
        if self.num_heads < self.ref_attn_head_groups:
            raise ValueError(
                f"{self.num_heads} heads cannot form {self.ref_attn_head_groups} reference-attention groups"
            )
        if self.vae_scale < 2:
            raise ValueError(f"vae_scale must be at least 2, got {self.vae_scale}")

    @classmethod
    def from_official(cls, config: Mapping[str, Any]) -> DiTConfig:
        """Build from an official-style config dict, as recorded in the parity fixtures.

        `config` holds `WanModel_kwargs` (the official constructor arguments), optionally `audio_proj`
        (the audio projection sizes, including wav2vec `blocks` and `channels`) and
        `fixed_in_official_code` (CLIP sizes, RoPE and L-RoPE constants).
        """
        kw = config["WanModel_kwargs"]
        proj = config.get("audio_proj", {})
        fixed = config.get("fixed_in_official_code", {})
        lrope = fixed.get("lrope_positions", {})
        if kw.get("model_type", "i2v") != "i2v":
            raise ValueError(f"only the i2v model is supported, got model_type {kw['model_type']!r}")
        if tuple(kw.get("window_size", (-1, -1))) != (-1, -1):
            raise ValueError(f"windowed attention is not supported, got window_size {kw['window_size']}")
        for key, ours in (("intermediate_dim", "intermediate_dim"), ("output_dim", "output_dim")):
            if key in proj and proj[key] != kw[ours]:
                raise ValueError(f"audio_proj.{key}={proj[key]} disagrees with WanModel {ours}={kw[ours]}")
        defaults = cls()
        return cls(
            dim=kw["dim"],
            ffn_dim=kw["ffn_dim"],
            freq_dim=kw["freq_dim"],
            num_heads=kw["num_heads"],
            num_layers=kw["num_layers"],
            in_dim=kw["in_dim"],
            out_dim=kw["out_dim"],
            patch_size=tuple(kw["patch_size"]),
            text_dim=kw["text_dim"],
            text_len=kw["text_len"],
            eps=kw["eps"],
            qk_norm=kw["qk_norm"],
            cross_attn_norm=kw["cross_attn_norm"],
            clip_tokens=fixed.get("clip_tokens", defaults.clip_tokens),
            clip_dim=fixed.get("clip_dim", defaults.clip_dim),
            audio_window=kw["audio_window"],
            audio_blocks=proj.get("blocks", defaults.audio_blocks),
            audio_channels=proj.get("channels", defaults.audio_channels),
            audio_intermediate_dim=kw["intermediate_dim"],
            audio_output_dim=kw["output_dim"],
            audio_context_tokens=kw["context_tokens"],
            vae_scale=kw["vae_scale"],
            norm_input_visual=kw["norm_input_visual"],
            norm_output_audio=proj.get("norm_output_audio", kw["norm_output_audio"]),
            rope_theta=float(fixed.get("rope_theta", defaults.rope_theta)),
            rope_positions=fixed.get("rope_positions_per_axis", defaults.rope_positions),
            lrope_person1_range=tuple(lrope.get("person1_range", defaults.lrope_person1_range)),
            lrope_person2_range=tuple(lrope.get("person2_range", defaults.lrope_person2_range)),
            lrope_background=float(lrope.get("background", defaults.lrope_background)),
            lrope_key_positions=(
                float(lrope.get("audio_key_person1", defaults.lrope_key_positions[0])),
                float(lrope.get("audio_key_person2", defaults.lrope_key_positions[1])),
            ),
            ref_attn_head_groups=fixed.get("ref_attn_map_head_groups", defaults.ref_attn_head_groups),
        )


# ---------------------------------------------------------------------------------------------------------
# Pure functions
# ---------------------------------------------------------------------------------------------------------


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) timesteps -> (B, dim) float64: cos(t*w_i) then sin(t*w_i), w_i = 10000^(-i/half)."""
    half = dim // 2
    position = t.to(torch.float64)
    freqs = torch.pow(10000, -torch.arange(half, device=t.device).to(position).div(half))
    sinusoid = torch.outer(position, freqs)  # (B, half)
    return torch.cat([torch.cos(sinusoid), torch.sin(sinusoid)], dim=1)


def _linear_fp32(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """A Linear computed in fp32 whatever the parameter dtype (the official code autocasts these to fp32)."""
    bias = None if layer.bias is None else layer.bias.float()
    return F.linear(x.float(), layer.weight.float(), bias)


def reference_attention_map(
    q: torch.Tensor,
    k_ref: torch.Tensor,
    masks: torch.Tensor,
    head_groups: int,
    chunk_elements: int = REF_ATTN_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """How much each token attends to each person's region of the reference (first latent) frame.

    Per head, softmax(q k_ref^T / sqrt(d)) over the reference tokens; the probability mass inside each mask
    divided by the mask's token count; averaged over each group of heads (the first num_heads // groups
    heads, then the next, ...; left-over heads are ignored), then over the groups. Computed in query chunks
    so no full (heads, tokens, reference tokens) tensor is held. Logits, softmax and masked sums run in q's
    dtype (bf16 for the real model), as in the official code; the per-head averages are fp32.

    Args:
        q: (B, L, H, D) queries after RMSNorm and 3-D RoPE.
        k_ref: (B, N0, H, D) keys of the reference-frame tokens, after RMSNorm and 3-D RoPE.
        masks: (B, C, N0) 0/1 class masks on the reference-frame tokens.
        head_groups: number of head groups.

    Returns:
        (B, C, L) float32 map. An empty mask gives NaN (0/0), as in the official code.
    """
    b, seq, heads, d = q.shape
    n_ref = k_ref.shape[1]
    per_group = heads // head_groups
    scale = 1.0 / d**0.5
    masks_t = masks.transpose(1, 2)[:, None].to(q.dtype)  # (B, 1, N0, C)
    counts = masks.float().sum(-1)[:, :, None]  # (B, C, 1)
    step = max(1, chunk_elements // max(1, b * per_group * n_ref))
    out = torch.zeros(b, masks.shape[1], seq, dtype=torch.float32, device=q.device)
    for g in range(head_groups):
        heads_g = slice(g * per_group, (g + 1) * per_group)
        k_g = k_ref[:, :, heads_g].transpose(1, 2)  # (B, h, N0, D)
        for start in range(0, seq, step):
            end = min(seq, start + step)
            q_g = (q[:, start:end, heads_g] * scale).transpose(1, 2)  # (B, h, l, D)
            probs = (q_g @ k_g.transpose(-1, -2)).softmax(dim=-1)  # (B, h, l, N0)
            mass = probs @ masks_t  # (B, h, l, C)
            out[:, :, start:end] += (mass.float().transpose(2, 3) / counts[:, None]).mean(dim=1)  # (B, C, l)
    return out / head_groups


def lrope_query_positions(
    ref_map: torch.Tensor,
    person1_range: tuple[float, float],
    person2_range: tuple[float, float],
    background: float,
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """L-RoPE position and class of every visual token from its reference-attention map.

    Class = argmax over (person 1, person 2, background). A person-i token's position is its own map value,
    min-max normalised over all tokens of that map row (1e-8 added to the span), into person i's range;
    background tokens sit at `background`.

    Args:
        ref_map: (B, 3, L) reference-attention map.
        bounds: (lo, hi), each (B, 3, 1), the row minima and maxima over all tokens when `ref_map` holds only
            a shard of them (sequence parallel); None: taken from `ref_map`.

    Returns:
        positions (B, L) float32 and classes (B, L) int64.
    """
    ref_map = ref_map.float()
    if bounds is None:
        hi = ref_map.amax(dim=-1, keepdim=True)  # (B, 3, 1)
        lo = ref_map.amin(dim=-1, keepdim=True)  # (B, 3, 1)
    else:
        lo, hi = (b.float() for b in bounds)
    normalised = (ref_map - lo) / (hi - lo + 1e-8)  # (B, 3, L)
    (lo1, hi1), (lo2, hi2) = person1_range, person2_range
    person1 = normalised[:, 0] * (hi1 - lo1) + lo1  # (B, L)
    person2 = normalised[:, 1] * (hi2 - lo2) + lo2  # (B, L)
    candidates = torch.stack([person1, person2, torch.full_like(person1, background)], dim=1)  # (B, 3, L)
    classes = ref_map.argmax(dim=1)  # (B, L)
    positions = candidates.gather(1, classes[:, None])[:, 0]  # (B, L)
    return positions, classes


def token_person_masks(masks: torch.Tensor, token_hw: tuple[int, int]) -> torch.Tensor:
    """(B, 3, h, w) latent-grid masks -> (B, 3, token_h*token_w) by "nearest" resize, then > 0."""
    resized = F.interpolate(masks.float(), size=token_hw, mode="nearest")  # (B, 3, th, tw)
    return (resized > 0).flatten(2).float()


# ---------------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    """RMSNorm over the last dim, normalised in fp32, with a gain (Wan's `WanRMSNorm`)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 and cast back to the input dtype (Wan's `WanLayerNorm`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


class SelfAttention(nn.Module):
    """Self-attention with RMSNorm'd q/k and 3-D RoPE; also gives the reference-attention map for L-RoPE."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.head_groups = cfg.ref_attn_head_groups
        self.q = nn.Linear(cfg.dim, cfg.dim)
        self.k = nn.Linear(cfg.dim, cfg.dim)
        self.v = nn.Linear(cfg.dim, cfg.dim)
        self.o = nn.Linear(cfg.dim, cfg.dim)
        self.norm_q = RMSNorm(cfg.dim, cfg.eps) if cfg.qk_norm else nn.Identity()
        self.norm_k = RMSNorm(cfg.dim, cfg.eps) if cfg.qk_norm else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        freqs: torch.Tensor,
        ref_index: torch.Tensor | None = None,
        ref_masks: torch.Tensor | None = None,
        shard: SequenceShard | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, L, C) -> (B, L, C), and the (b, 3, L) reference map of the samples in `ref_index`.

        `ref_masks` (b, 3, N0) are the class masks on the first latent frame's N0 tokens. With a `shard`, x
        and freqs hold this rank's tokens only: attention runs over all tokens (heads <-> tokens all-to-all)
        and the reference keys of frame 0 come from whichever ranks hold them.
        """
        b, seq, _ = x.shape
        q = self.norm_q(self.q(x)).view(b, seq, self.num_heads, self.head_dim)  # (B, L, H, D)
        k = self.norm_k(self.k(x)).view(b, seq, self.num_heads, self.head_dim)  # (B, L, H, D)
        v = self.v(x).view(b, seq, self.num_heads, self.head_dim)  # (B, L, H, D)
        q = apply_rope_3d(q, freqs)
        k = apply_rope_3d(k, freqs)
        attended = attention(q, k, v) if shard is None else shard.attention(q, k, v, attention)
        out = self.o(attended.flatten(2))  # (B, L, C)
        ref_map = None
        if ref_index is not None:
            n_ref = ref_masks.shape[-1]
            with torch.no_grad():
                k_ref = k[ref_index, :n_ref] if shard is None else shard.reference_keys(k[ref_index], n_ref)
                ref_map = reference_attention_map(q[ref_index], k_ref, ref_masks, self.head_groups)  # (b, 3, L)
        return out, ref_map


class CrossAttention(nn.Module):
    """Attention of the tokens to the CLIP image tokens and to the text tokens; the two results are summed."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.clip_tokens = cfg.clip_tokens
        self.q = nn.Linear(cfg.dim, cfg.dim)
        self.k = nn.Linear(cfg.dim, cfg.dim)
        self.v = nn.Linear(cfg.dim, cfg.dim)
        self.o = nn.Linear(cfg.dim, cfg.dim)
        self.norm_q = RMSNorm(cfg.dim, cfg.eps) if cfg.qk_norm else nn.Identity()
        self.norm_k = RMSNorm(cfg.dim, cfg.eps) if cfg.qk_norm else nn.Identity()
        self.k_img = nn.Linear(cfg.dim, cfg.dim)
        self.v_img = nn.Linear(cfg.dim, cfg.dim)
        self.norm_k_img = RMSNorm(cfg.dim, cfg.eps) if cfg.qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """x (B, L, C), context (B, clip_tokens + text_len, C) -> (B, L, C)."""
        b, n, d = x.shape[0], self.num_heads, self.head_dim
        image, text = context[:, : self.clip_tokens], context[:, self.clip_tokens :]
        q = self.norm_q(self.q(x)).view(b, -1, n, d)  # (B, L, H, D)
        k = self.norm_k(self.k(text)).view(b, -1, n, d)  # (B, T, H, D)
        v = self.v(text).view(b, -1, n, d)  # (B, T, H, D)
        k_img = self.norm_k_img(self.k_img(image)).view(b, -1, n, d)  # (B, 257, H, D)
        v_img = self.v_img(image).view(b, -1, n, d)  # (B, 257, H, D)
        image_out = attention(q, k_img, v_img).flatten(2)  # (B, L, C)
        text_out = attention(q, k, v).flatten(2)  # (B, L, C)
        return self.o(text_out + image_out)


class AudioCrossAttention(nn.Module):
    """Per-latent-frame attention of the visual tokens to that frame's audio tokens (optionally L-RoPE'd)."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.lrope_base = cfg.lrope_base
        self.q_linear = nn.Linear(cfg.dim, cfg.dim)
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.kv_linear = nn.Linear(cfg.audio_output_dim, 2 * cfg.dim)

    def forward(
        self,
        x: torch.Tensor,
        audio_tokens: torch.Tensor,
        q_positions: torch.Tensor | None = None,
        k_positions: torch.Tensor | None = None,
        shard: SequenceShard | None = None,
    ) -> torch.Tensor:
        """Visual tokens x (B, F*S, C) and audio tokens (B, F, N_a, C_a) -> (B, F*S, C).

        With `q_positions` (B, F*S) and `k_positions` (N_a,) the queries and keys get a 1-D L-RoPE. With a
        `shard`, x (and q_positions) hold this rank's tokens only, which may start and end inside a frame.
        """
        b, seq, dim = x.shape
        frames = audio_tokens.shape[1]
        h, d = self.num_heads, self.head_dim
        q = self.q_linear(x).view(b, seq, h, d)  # (B, L, H, D)
        kv = self.kv_linear(audio_tokens)  # (B, F, N_a, 2*C)
        k, v = rearrange(kv, "b f n (two h d) -> two (b f) n h d", two=2, h=h, d=d)  # each (B*F, N_a, H, D)
        if q_positions is not None:
            q = apply_lrope(q, q_positions, self.lrope_base)
            k = apply_lrope(k, k_positions, self.lrope_base)
        if shard is not None:
            return self.proj(shard.frame_attention(q, k, v, frames, attention).reshape(b, seq, dim))
        q = rearrange(q, "b (f s) h d -> (b f) s h d", f=frames)  # (B*F, S, H, D): each frame hears its audio
        out = attention(q, k, v).reshape(b, seq, dim)  # (B, L, C)
        return self.proj(out)


@dataclass(frozen=True)
class AudioGroup:
    """Samples of a batch that share a person count, with what their audio cross-attention needs."""

    index: torch.Tensor  # (b,) int64 sample indices in the batch
    persons: int  # 1 or 2
    tokens: torch.Tensor  # (b, F, persons*context_tokens, C_a) audio tokens, person 1 first
    masks: torch.Tensor | None  # (b, 3, N0) token-grid class masks of frame 0; two persons only
    key_positions: torch.Tensor | None  # (persons*context_tokens,) L-RoPE positions; two persons only


class DiTBlock(nn.Module):
    """Self-attention, text/image cross-attention, audio cross-attention and FFN, modulated by the timestep."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.norm1 = LayerNorm(cfg.dim, cfg.eps, elementwise_affine=False)
        self.self_attn = SelfAttention(cfg)
        self.norm3 = LayerNorm(cfg.dim, cfg.eps) if cfg.cross_attn_norm else nn.Identity()
        self.cross_attn = CrossAttention(cfg)
        self.norm2 = LayerNorm(cfg.dim, cfg.eps, elementwise_affine=False)
        self.ffn = nn.Sequential(
            nn.Linear(cfg.dim, cfg.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.ffn_dim, cfg.dim)
        )
        self.modulation = nn.Parameter(torch.randn(1, 6, cfg.dim) / cfg.dim**0.5)
        self.audio_cross_attn = AudioCrossAttention(cfg)
        self.norm_x = LayerNorm(cfg.dim, cfg.eps) if cfg.norm_input_visual else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        e0: torch.Tensor,
        freqs: torch.Tensor,
        context: torch.Tensor,
        audio_groups: Sequence[AudioGroup],
        capture: dict[str, Any] | None = None,
        shard: SequenceShard | None = None,
    ) -> torch.Tensor:
        """x (B, L, C) in the parameter dtype, e0 (B, 6, C) fp32 -> (B, L, C); L is local with a `shard`."""
        dtype = x.dtype
        shift1, scale1, gate1, shift2, scale2, gate2 = (self.modulation.float() + e0).chunk(6, dim=1)
        two = next((g for g in audio_groups if g.persons == 2), None)

        y, ref_map = self.self_attn(
            (self.norm1(x).float() * (1 + scale1) + shift1).to(dtype),
            freqs,
            ref_index=None if two is None else two.index,
            ref_masks=None if two is None else two.masks,
            shard=shard,
        )
        x = (x + y * gate1).to(dtype)
        x = x + self.cross_attn(self.norm3(x), context)
        x = x + self._audio(self.norm_x(x), audio_groups, ref_map, capture, shard)
        y = self.ffn((self.norm2(x).float() * (1 + scale2) + shift2).to(dtype))
        return (x + y * gate2).to(dtype)

    def _audio(
        self,
        x: torch.Tensor,
        audio_groups: Sequence[AudioGroup],
        ref_map: torch.Tensor | None,
        capture: dict[str, Any] | None,
        shard: SequenceShard | None = None,
    ) -> torch.Tensor:
        """Audio cross-attention of each person-count group, scattered back into batch order."""
        if len(audio_groups) == 1:
            return self._audio_group(x, audio_groups[0], ref_map, capture, shard)
        out = torch.zeros_like(x)  # (B, L, C)
        for group in audio_groups:
            out.index_copy_(0, group.index, self._audio_group(x[group.index], group, ref_map, capture, shard))
        return out

    def _audio_group(
        self,
        x: torch.Tensor,
        group: AudioGroup,
        ref_map: torch.Tensor | None,
        capture: dict[str, Any] | None,
        shard: SequenceShard | None = None,
    ) -> torch.Tensor:
        """x (b, L, C) of one group -> (b, L, C); two persons get L-RoPE positions from `ref_map`."""
        if group.persons == 1:
            return self.audio_cross_attn(x, group.tokens, shard=shard)
        cfg = self.cfg
        bounds = None if shard is None else shard.extrema(ref_map)  # min-max over every rank's tokens
        q_pos, classes = lrope_query_positions(
            ref_map, cfg.lrope_person1_range, cfg.lrope_person2_range, cfg.lrope_background, bounds
        )  # (b, L), (b, L)
        if capture is not None:
            capture["ref_attn_map"].append(ref_map)
            capture["lrope_q_pos"].append(q_pos)
            capture["lrope_class"].append(classes)
            capture["lrope_k_pos"].append(group.key_positions.repeat(group.tokens.shape[1]))
        return self.audio_cross_attn(x, group.tokens, q_pos, group.key_positions, shard)


class Head(nn.Module):
    """Final modulated LayerNorm + Linear to patch pixels, in fp32; modulated by e (not e0)."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.norm = LayerNorm(cfg.dim, cfg.eps, elementwise_affine=False)
        self.head = nn.Linear(cfg.dim, math.prod(cfg.patch_size) * cfg.out_dim)
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim**0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """x (B, L, C), e (B, C) fp32 -> (B, L, prod(patch)*out_dim) fp32."""
        shift, scale = (self.modulation.float() + e[:, None]).chunk(2, dim=1)
        return _linear_fp32(self.head, self.norm(x).float() * (1 + scale) + shift)


class MLPProj(nn.Module):
    """CLIP image tokens -> model width: LayerNorm, Linear, exact GELU, Linear, LayerNorm."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            LayerNorm(cfg.clip_dim, cfg.aux_norm_eps),
            nn.Linear(cfg.clip_dim, cfg.clip_dim),
            nn.GELU(),
            nn.Linear(cfg.clip_dim, cfg.dim),
            LayerNorm(cfg.dim, cfg.aux_norm_eps),
        )

    def forward(self, image_tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(image_tokens)


class AudioProjModel(nn.Module):
    """Windowed wav2vec features of each person -> `context_tokens` audio tokens per latent frame."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        per_slot = cfg.audio_blocks * cfg.audio_channels
        self.proj1 = nn.Linear(cfg.audio_window * per_slot, cfg.audio_intermediate_dim)
        self.proj1_vf = nn.Linear(cfg.audio_window_vf * per_slot, cfg.audio_intermediate_dim)
        self.proj2 = nn.Linear(cfg.audio_intermediate_dim, cfg.audio_intermediate_dim)
        self.proj3 = nn.Linear(cfg.audio_intermediate_dim, cfg.audio_context_tokens * cfg.audio_output_dim)
        self.norm = LayerNorm(cfg.audio_output_dim, cfg.aux_norm_eps) if cfg.norm_output_audio else nn.Identity()

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(N, 1 + vae_scale*(F-1), window, blocks, channels) -> (N, F, context_tokens, C_a).

        Video frame 0 uses its whole window; each later group of `vae_scale` frames (one latent frame)
        uses slots 0..mid of its first frame, the centre slot of its middle frames and slots mid..end of
        its last frame.
        """
        cfg = self.cfg
        frames = audio.shape[1]
        lat_frames = 1 + (frames - 1) // cfg.vae_scale
        mid = cfg.audio_window // 2
        later = audio[:, 1:].unflatten(1, (lat_frames - 1, cfg.vae_scale))  # (N, F-1, s, w, b, c)
        later = torch.cat(
            [later[:, :, 0, : mid + 1], later[:, :, 1:-1, mid], later[:, :, -1, mid:]], dim=2
        )  # (N, F-1, w_vf, b, c)
        first = torch.relu(self.proj1(audio[:, :1].flatten(2)))  # (N, 1, I)
        later = torch.relu(self.proj1_vf(later.flatten(2)))  # (N, F-1, I)
        hidden = torch.relu(self.proj2(torch.cat([first, later], dim=1)))  # (N, F, I)
        tokens = self.proj3(hidden).unflatten(-1, (cfg.audio_context_tokens, cfg.audio_output_dim))
        return self.norm(tokens)  # (N, F, M, C_a)


@dataclass(frozen=True)
class DiTInputs:
    """Everything the blocks and the head need, prepared once per forward (see `MultiTalkDiT.prepare`)."""

    x: torch.Tensor  # (B, L, C) patch tokens, parameter dtype
    e: torch.Tensor  # (B, C) fp32 time embedding (modulates the head; TeaCache's input without ret-steps)
    e0: torch.Tensor  # (B, 6, C) fp32 time projection (modulates the blocks; TeaCache's input)
    context: torch.Tensor  # (B, clip_tokens + text_len, C) image tokens then text tokens
    freqs: torch.Tensor  # (L, head_dim/2) complex128 3-D RoPE rotations
    grid: tuple[int, int, int]  # token grid (frames, rows, cols)
    audio_groups: tuple[AudioGroup, ...]  # samples grouped by person count
    shard: SequenceShard | None = None  # sequence parallel: x and freqs hold this rank's tokens only


# ---------------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------------


class MultiTalkDiT(nn.Module):
    """The MultiTalk video DiT. State-dict keys are the official checkpoint keys.

    Call `forward` for one denoising evaluation of a batch, or `prepare` / `run_blocks` / `finish` to cache
    block residuals between steps.
    """

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embedding = nn.Conv3d(cfg.in_dim, cfg.dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.text_embedding = nn.Sequential(
            nn.Linear(cfg.text_dim, cfg.dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.dim, cfg.dim)
        )
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, 6 * cfg.dim))
        self.blocks = nn.ModuleList([DiTBlock(cfg) for _ in range(cfg.num_layers)])
        self.head = Head(cfg)
        self.img_emb = MLPProj(cfg)
        self.audio_proj = AudioProjModel(cfg)
        self._rope_tables: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    # -- preparation ------------------------------------------------------------------------------------

    def _freqs(self, grid: tuple[int, int, int], device: torch.device) -> torch.Tensor:
        if device not in self._rope_tables:
            tables = rope_angle_tables(self.cfg.head_dim, self.cfg.rope_positions, self.cfg.rope_theta)
            self._rope_tables[device] = tuple(t.to(device) for t in tables)
        return rope_grid_freqs(self._rope_tables[device], grid)

    def _time(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) timesteps -> e (B, C) and e0 (B, 6, C), both fp32."""
        sinusoid = sinusoidal_embedding(t, self.cfg.freq_dim).float()  # (B, freq_dim)
        e = _linear_fp32(self.time_embedding[2], F.silu(_linear_fp32(self.time_embedding[0], sinusoid)))
        e0 = _linear_fp32(self.time_projection[1], F.silu(e)).unflatten(1, (6, self.cfg.dim))
        return e, e0

    def _text(self, context: torch.Tensor | Sequence[torch.Tensor], batch: int, dtype: torch.dtype) -> torch.Tensor:
        """Text tokens (unpadded list or padded tensor) -> zero-padded to text_len -> (B, text_len, C)."""
        cfg = self.cfg
        rows = list(context)
        if len(rows) == 1 and batch > 1:
            rows = rows * batch
        if len(rows) != batch:
            raise ValueError(f"got {len(rows)} text contexts for a batch of {batch}")
        padded = []
        for i, u in enumerate(rows):
            if u.dim() != 2 or u.shape[1] != cfg.text_dim or u.shape[0] > cfg.text_len:
                raise ValueError(
                    f"context[{i}] must be (<= {cfg.text_len}, {cfg.text_dim}) text tokens, got {tuple(u.shape)}"
                )
            padded.append(torch.cat([u, u.new_zeros(cfg.text_len - u.shape[0], u.shape[1])]))
        device = self.patch_embedding.weight.device
        return self.text_embedding(torch.stack(padded).to(device=device, dtype=dtype))

    def _audio_groups(
        self,
        audio: Sequence[torch.Tensor],
        batch: int,
        lat_frames: int,
        token_hw: tuple[int, int],
        ref_target_masks: torch.Tensor | None,
        dtype: torch.dtype,
    ) -> tuple[AudioGroup, ...]:
        cfg = self.cfg
        device = self.patch_embedding.weight.device
        if isinstance(audio, torch.Tensor) or len(audio) != batch:
            raise ValueError(
                f"audio must be a list of {batch} tensors (persons, frames, window, blocks, channels), one per sample"
            )
        frames = 1 + cfg.vae_scale * (lat_frames - 1)
        expected = (frames, cfg.audio_window, cfg.audio_blocks, cfg.audio_channels)
        by_persons: dict[int, list[int]] = {}
        for i, a in enumerate(audio):
            if a.dim() != 5 or tuple(a.shape[1:]) != expected or a.shape[0] not in (1, 2):
                raise ValueError(
                    f"audio[{i}] must be (1 or 2 persons, {', '.join(map(str, expected))}) for {lat_frames} "
                    f"latent frames, got {tuple(a.shape)}"
                )
            by_persons.setdefault(a.shape[0], []).append(i)

        groups = []
        for persons, indices in sorted(by_persons.items()):
            stacked = torch.cat([audio[i] for i in indices]).to(device=device, dtype=dtype)  # (b*P, T, w, bl, c)
            tokens = self.audio_proj(stacked)  # (b*P, F, M, C_a)
            tokens = rearrange(tokens, "(b p) f m c -> b f (p m) c", p=persons)  # (b, F, P*M, C_a), person 1 first
            index = torch.tensor(indices, device=device)
            masks = key_positions = None
            if persons == 2:
                masks = self._token_masks(ref_target_masks, indices, batch, token_hw, dtype)
                m = cfg.audio_context_tokens
                key_positions = torch.tensor(
                    [cfg.lrope_key_positions[0]] * m + [cfg.lrope_key_positions[1]] * m, device=device
                )
            groups.append(AudioGroup(index, persons, tokens, masks, key_positions))
        return tuple(groups)

    def _token_masks(
        self,
        ref_target_masks: torch.Tensor | None,
        indices: list[int],
        batch: int,
        token_hw: tuple[int, int],
        dtype: torch.dtype,
    ) -> torch.Tensor:
        """Latent-grid person masks of the two-person samples -> (b, 3, token_h*token_w)."""
        if ref_target_masks is None:
            raise ValueError("two-person audio needs ref_target_masks (3, H, W) on the latent grid")
        masks = ref_target_masks.to(self.patch_embedding.weight.device)
        if masks.dim() == 3:
            masks = masks[None].expand(batch, -1, -1, -1)
        if masks.dim() != 4 or masks.shape[:2] != (batch, 3):
            raise ValueError(
                f"ref_target_masks must be (3, H, W) or ({batch}, 3, H, W), got {tuple(ref_target_masks.shape)}"
            )
        return token_person_masks(masks[indices], token_hw).to(dtype)

    def prepare(
        self,
        x: torch.Tensor,
        t: torch.Tensor | float,
        context: torch.Tensor | Sequence[torch.Tensor],
        clip_fea: torch.Tensor,
        y: torch.Tensor,
        audio: Sequence[torch.Tensor],
        ref_target_masks: torch.Tensor | None = None,
    ) -> DiTInputs:
        """Embed the inputs: patch tokens, time, text + image context, audio tokens grouped by persons.

        Args: as `forward`.
        """
        cfg = self.cfg
        weight = self.patch_embedding.weight
        dtype, device = weight.dtype, weight.device
        if x.dim() != 5:
            raise ValueError(f"x must be (B, {cfg.out_dim}, F, H, W), got {tuple(x.shape)}")
        batch, _, frames, height, width = x.shape
        pf, ph, pw = cfg.patch_size
        if frames % pf or height % ph or width % pw:
            raise ValueError(f"latent size {(frames, height, width)} is not divisible by the patch {cfg.patch_size}")
        if y.dim() != 5 or y.shape[2:] != x.shape[2:] or y.shape[0] not in (1, batch):
            raise ValueError(f"y must be (B or 1, C, {frames}, {height}, {width}), got {tuple(y.shape)}")
        if y.shape[1] + x.shape[1] != cfg.in_dim:
            raise ValueError(f"x and y channels must add up to in_dim {cfg.in_dim}, got {x.shape[1]} + {y.shape[1]}")

        y = y.expand(batch, -1, -1, -1, -1)
        tokens = self.patch_embedding(torch.cat([x, y], dim=1).to(device=device, dtype=dtype))  # (B, C, f, h, w)
        grid = tuple(tokens.shape[2:])
        tokens = rearrange(tokens, "b c f h w -> b (f h w) c")  # (B, L, C)

        t = torch.as_tensor(t, device=device).reshape(-1)
        if t.numel() not in (1, batch):
            raise ValueError(f"t must hold 1 or {batch} timesteps, got {t.numel()}")
        e, e0 = self._time(t.expand(batch))

        if clip_fea.shape[0] not in (1, batch) or tuple(clip_fea.shape[1:]) != (cfg.clip_tokens, cfg.clip_dim):
            raise ValueError(
                f"clip_fea must be (B or 1, {cfg.clip_tokens}, {cfg.clip_dim}), got {tuple(clip_fea.shape)}"
            )
        image = self.img_emb(clip_fea.to(device=device, dtype=dtype)).expand(batch, -1, -1)
        text = self._text(context, batch, dtype)
        full_context = torch.cat([image, text], dim=1).to(dtype)  # (B, 257 + text_len, C)

        groups = self._audio_groups(audio, batch, grid[0], grid[1:], ref_target_masks, dtype)
        return DiTInputs(
            x=tokens,
            e=e,
            e0=e0,
            context=full_context,
            freqs=self._freqs(grid, device),
            grid=grid,
            audio_groups=groups,
        )

    # -- trunk and head ---------------------------------------------------------------------------------

    def run_blocks(self, inputs: DiTInputs, capture: dict[str, Any] | None = None) -> torch.Tensor:
        """All blocks on `inputs.x` -> (B, L, C)."""
        if capture is not None:
            two = next((g for g in inputs.audio_groups if g.persons == 2), None)
            capture["lrope_samples"] = None if two is None else two.index
            capture["token_ref_target_masks"] = None if two is None else two.masks
            for key in ("ref_attn_map", "lrope_q_pos", "lrope_k_pos", "lrope_class"):
                capture[key] = []
        x = inputs.x
        for block in self.blocks:
            x = block(x, inputs.e0, inputs.freqs, inputs.context, inputs.audio_groups, capture, inputs.shard)
        return x

    def finish(self, inputs: DiTInputs, x: torch.Tensor) -> torch.Tensor:
        """Head + unpatchify: (B, L, C) -> (B, out_dim, F, H, W) float32."""
        out = self.head(x, inputs.e)  # (B, L, prod(patch)*c)
        if inputs.shard is not None:
            out = inputs.shard.gather(out)  # every rank's tokens, in order
        f, h, w = inputs.grid
        pf, ph, pw = self.cfg.patch_size
        c = self.cfg.out_dim
        out = rearrange(
            out, "b (f h w) (pf ph pw c) -> b c (f pf) (h ph) (w pw)", f=f, h=h, w=w, pf=pf, ph=ph, pw=pw, c=c
        )
        return out.float()

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor | float,
        context: torch.Tensor | Sequence[torch.Tensor],
        clip_fea: torch.Tensor,
        y: torch.Tensor,
        audio: Sequence[torch.Tensor],
        ref_target_masks: torch.Tensor | None = None,
        capture: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        """Velocity prediction for a batch.

        Args:
            x: (B, 16, F, H, W) noisy latents.
            t: (B,) or (1,) timesteps on the 0..1000 scale (floats).
            context: B text-token tensors (L_i <= text_len, text_dim), unpadded, or (B, L, text_dim); one
                entry is shared by the whole batch.
            clip_fea: (B or 1, clip_tokens, clip_dim) CLIP image tokens.
            y: (B or 1, 20, F, H, W) condition: 4 mask channels + 16 image-condition latent channels.
            audio: B tensors (P_i, 1 + vae_scale*(F-1), window, blocks, channels), P_i in {1, 2}.
            ref_target_masks: (3, H', W') or (B, 3, H', W') 0/1 person masks (person 1, person 2,
                background), on the latent grid; needed when a sample has two persons.
            capture: optional dict filled with L-RoPE intermediates of the two-person samples:
                `lrope_samples` (b,), `token_ref_target_masks` (b, 3, N0), and per block lists
                `ref_attn_map` (b, 3, L), `lrope_q_pos` (b, L), `lrope_class` (b, L) int64,
                `lrope_k_pos` (F*2*context_tokens,).

        Returns:
            (B, 16, F, H, W) float32.
        """
        inputs = self.prepare(x, t, context, clip_fea, y, audio, ref_target_masks)
        return self.finish(inputs, self.run_blocks(inputs, capture))
