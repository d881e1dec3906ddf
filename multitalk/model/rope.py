"""Rotary position embeddings of the MultiTalk DiT: Wan's 3-D RoPE and MultiTalk's 1-D L-RoPE.

3-D RoPE (self-attention q and k): the head dim d is read as d/2 complex pairs of adjacent values
(2i, 2i+1). The pairs are split (c - 2*floor(c/3), floor(c/3), floor(c/3)), c = d/2, between the frame, row
and column axes. Each axis has its own float64 angle table (`theta`, `max_positions` positions, exponent
2j/dim_axis); the rotation runs in float64 and is cast back to the input dtype, as in Wan.

L-RoPE (audio cross-attention, two persons): a 1-D RoPE over adjacent pairs with base 10000, computed in
float32, at arbitrary float positions. Visual tokens get a position inside their person's label range and
the audio tokens of person i sit at the centre of that range, so attention favours matching labels.

References:
- Su et al., "RoFormer: Enhanced Transformer with Rotary Position Embedding" (2021), arXiv:2104.09864.
- Wan-Video/Wan2.1 `wan/modules/model.py` (`rope_params`, `rope_apply`).
- Kong et al., "Let Them Talk: Audio-Driven Multi-Person Conversational Video Generation" (MultiTalk, 2025),
  arXiv:2505.22647, section on Label Rotary Position Embedding.
"""

from __future__ import annotations

import torch

# Float64 rotation temporaries are bounded to this many complex pairs per chunk (256 MiB of complex128).
_ROPE_CHUNK_PAIRS = 2**24


def rope_axis_pairs(head_dim: int) -> tuple[int, int, int]:
    """Complex pairs per axis (frame, row, column) for a head of `head_dim` values."""
    if head_dim % 2 != 0:
        raise ValueError(f"RoPE needs an even head dim, got {head_dim}")
    c = head_dim // 2
    return c - 2 * (c // 3), c // 3, c // 3


def rope_angle_tables(
    head_dim: int, max_positions: int = 1024, theta: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-axis float64 angle tables, each (max_positions, pairs_axis): angle[p, j] = p / theta^(2j/dim_axis)."""
    tables = []
    for pairs in rope_axis_pairs(head_dim):
        dim_axis = 2 * pairs
        inv_freq = 1.0 / torch.pow(theta, torch.arange(0, dim_axis, 2, dtype=torch.float64) / dim_axis)
        tables.append(torch.outer(torch.arange(max_positions, dtype=torch.float64), inv_freq))
    return tables[0], tables[1], tables[2]


def rope_grid_freqs(
    tables: tuple[torch.Tensor, torch.Tensor, torch.Tensor], grid: tuple[int, int, int]
) -> torch.Tensor:
    """Unit complex rotations for every token of a (frames, rows, cols) grid: (f*h*w, head_dim/2) complex128.

    Tokens are ordered frame-major, then row, then column (the patch-token order of the DiT).
    """
    f, h, w = grid
    max_positions = tables[0].shape[0]
    if max(f, h, w) > max_positions:
        raise ValueError(f"token grid {grid} exceeds the {max_positions} RoPE positions per axis")
    t_ang, h_ang, w_ang = tables
    angles = torch.cat(
        [
            t_ang[:f].view(f, 1, 1, -1).expand(f, h, w, -1),
            h_ang[:h].view(1, h, 1, -1).expand(f, h, w, -1),
            w_ang[:w].view(1, 1, w, -1).expand(f, h, w, -1),
        ],
        dim=-1,
    ).reshape(f * h * w, -1)  # (L, d/2)
    return torch.polar(torch.ones_like(angles), angles)  # (L, d/2) complex128


def apply_rope_3d(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate (B, L, H, D) by `freqs` (L, D/2) complex in float64; returns x's dtype.

    Works through the sequence in chunks so the float64 copy stays small at real sizes.
    """
    b, seq, heads, d = x.shape
    if freqs.shape != (seq, d // 2):
        raise ValueError(f"RoPE table {tuple(freqs.shape)} does not match tokens {tuple(x.shape)}")
    out = torch.empty_like(x)
    step = max(1, _ROPE_CHUNK_PAIRS // max(1, b * heads * d // 2))
    for start in range(0, seq, step):
        end = min(seq, start + step)
        xc = torch.view_as_complex(x[:, start:end].to(torch.float64).reshape(b, end - start, heads, d // 2, 2))
        rotated = xc * freqs[None, start:end, None, :]  # (B, l, H, D/2) complex128
        out[:, start:end] = torch.view_as_real(rotated).flatten(3).to(x.dtype)
    return out


def lrope_inv_freq(head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """L-RoPE inverse frequencies, float32 (head_dim/2,): 1 / base^(2i/head_dim)."""
    return 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))


def _rotate_adjacent_pairs(x: torch.Tensor) -> torch.Tensor:
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)."""
    pairs = x.unflatten(-1, (-1, 2))  # (..., D/2, 2)
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def apply_lrope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """1-D RoPE on adjacent pairs at float positions, computed in float32; returns x's dtype.

    Args:
        x: (B, L, H, D) queries or keys.
        positions: (L,) or (B, L) positions, any float values.
    """
    d = x.shape[-1]
    inv_freq = lrope_inv_freq(d, base).to(x.device)
    angles = positions.to(device=x.device, dtype=torch.float32)[..., None] * inv_freq  # (..., L, D/2)
    angles = angles.repeat_interleave(2, dim=-1)  # (..., L, D)
    if angles.dim() == 2:
        angles = angles[None]  # (1, L, D)
    cos = angles.cos()[:, :, None, :]  # (B, L, 1, D)
    sin = angles.sin()[:, :, None, :]  # (B, L, 1, D)
    xf = x.float()
    return (xf * cos + _rotate_adjacent_pairs(xf) * sin).to(x.dtype)
