"""Multi-head softmax attention with one signature for every backend.

The DiT calls `attention(q, k, v)` for its self-, text/image cross- and audio cross-attention. The backend
is chosen per call from what is available:

- flash-attn 2 (`flash_attn.flash_attn_func`) when the package imports and the tensors live on CUDA. Like the
  official Wan/MultiTalk `flash_attention`, inputs that are not fp16/bf16 are cast to bf16 for the kernel and
  the result is cast back to the input dtype.
- torch `scaled_dot_product_attention` otherwise. It keeps the input dtype (fp32 stays exact fp32, which is
  what the parity fixtures hold).

The flash-attn import is attempted once, lazily, so importing this module never needs a GPU package.

References:
- Wan-Video/Wan2.1 `wan/modules/attention.py` (`flash_attention`).
- Dao, "FlashAttention-2" (2023), https://arxiv.org/abs/2307.08691.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

_HALF_DTYPES = (torch.float16, torch.bfloat16)
_FLASH_MAX_HEAD_DIM = 256


@functools.cache
def _flash_attn_func() -> Callable | None:
    """flash-attn's dense kernel, or None when the package is missing (looked up once)."""
    try:
        from flash_attn import flash_attn_func
    except ImportError:
        logger.info("flash-attn not importable; attention uses torch SDPA")
        return None
    logger.info("flash-attn found; CUDA attention uses it")
    return flash_attn_func


def backend_for(q: torch.Tensor) -> str:
    """The backend `attention` would use for this query tensor: "flash" or "sdpa"."""
    if q.device.type == "cuda" and q.size(-1) <= _FLASH_MAX_HEAD_DIM and _flash_attn_func() is not None:
        return "flash"
    return "sdpa"


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None) -> torch.Tensor:
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2),  # (B, H, Lq, D)
        k.transpose(1, 2),  # (B, H, Lk, D)
        v.transpose(1, 2),  # (B, H, Lk, D)
        scale=scale,
    )  # (B, H, Lq, D)
    return out.transpose(1, 2)  # (B, Lq, H, D)


def _flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None) -> torch.Tensor:
    out_dtype = q.dtype
    kernel_dtype = q.dtype if q.dtype in _HALF_DTYPES else torch.bfloat16
    out = _flash_attn_func()(
        q.to(kernel_dtype).contiguous(),
        k.to(kernel_dtype).contiguous(),
        v.to(kernel_dtype).contiguous(),
        softmax_scale=scale,
    )  # (B, Lq, H, D)
    return out.to(out_dtype)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float | None = None) -> torch.Tensor:
    """Softmax attention over all keys, no mask.

    Args:
        q: (B, Lq, H, D) queries.
        k: (B, Lk, H, D) keys.
        v: (B, Lk, H, D) values.
        scale: logit scale; None means 1/sqrt(D).

    Returns:
        (B, Lq, H, D) in the dtype of `q`.
    """
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            f"attention expects (B, L, heads, head_dim) tensors, got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if backend_for(q) == "flash":
        return _flash(q, k, v, scale)
    return _sdpa(q, k.to(q.dtype), v.to(q.dtype), scale)
