"""Multi-head softmax attention with one signature for every backend, the backend chosen once.

The DiT calls `attention(q, k, v)` for its self-, text/image cross- and audio cross-attention. Which kernel runs
is chosen once per pipeline (`select_backend`, screenplay `defaults.model.attention`) from what is installed:

- `flash3`: FlashAttention 3 (`flash_attn_interface.flash_attn_func`, Hopper: H100/H200);
- `flash2`: FlashAttention 2 (`flash_attn.flash_attn_func`, Ampere and later);
- `sage`: SageAttention (`sageattention.sageattn`, int8 Q·K with fp16 P·V): faster, but approximate, so it is
  never picked by `auto` and it is part of the chunk keys when chosen;
- `sdpa`: torch `scaled_dot_product_attention` (any device; fp32 stays exact fp32, as the parity fixtures hold).

`auto` takes the first of flash3, flash2, sdpa that is installed and usable on the device. Like the official Wan /
MultiTalk `flash_attention`, the GPU kernels get q, k and v in fp16/bf16 (other dtypes are cast to bf16) and the
result is cast back to the input dtype. Tensors on the CPU, and head sizes over 256, always use SDPA.

The GPU packages are imported lazily, so importing this module never needs one.

References:
- Wan-Video/Wan2.1 `wan/modules/attention.py` (`flash_attention`, the casts).
- Dao, "FlashAttention-2" (2023), arXiv:2307.08691; Shah et al., "FlashAttention-3" (2024), arXiv:2407.08608;
  Zhang et al., "SageAttention" (2024), arXiv:2410.02367.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "flash3", "flash2", "sage", "sdpa")
EXACT_ORDER = ("flash3", "flash2", "sdpa")  # what `auto` tries, fastest first; all compute exact softmax attention
APPROXIMATE = frozenset({"sage"})  # backends whose numbers differ beyond kernel rounding (they go into the keys)
_HALF_DTYPES = (torch.float16, torch.bfloat16)
_MAX_HEAD_DIM = 256
_MIN_CAPABILITY = {"flash3": (9, 0), "flash2": (8, 0), "sage": (8, 0)}
_IMPORTS = {
    "flash3": ("flash_attn_interface", "flash_attn_func"),
    "flash2": ("flash_attn", "flash_attn_func"),
    "sage": ("sageattention", "sageattn"),
}

_active = "sdpa"  # the backend chosen by the last `select_backend`


@functools.cache
def _kernel(name: str) -> Callable | None:
    """A GPU backend's kernel function, or None when its package is missing (looked up once)."""
    module_name, attr = _IMPORTS[name]
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, OSError) as e:
        logger.info("attention backend %s unavailable (%s)", name, e)
        return None


def _capability(device: torch.device) -> tuple[int, int] | None:
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_capability(device)


def unavailable_reason(name: str, device: torch.device | str) -> str | None:
    """Why a backend cannot run on `device` (None when it can)."""
    if name == "sdpa":
        return None
    if name not in _IMPORTS:
        raise ValueError(f"unknown attention backend {name!r} (use one of: {', '.join(BACKENDS)})")
    capability = _capability(torch.device(device))
    if capability is None:
        return f"{name} needs a CUDA GPU"
    if capability < _MIN_CAPABILITY[name]:
        need = ".".join(map(str, _MIN_CAPABILITY[name]))
        return f"{name} needs compute capability {need}, this GPU has {capability[0]}.{capability[1]}"
    if _kernel(name) is None:
        return f"{name} needs the {_IMPORTS[name][0]} package (pip install '.[gpu]' or see bench/README.md)"
    return None


def resolve_backend(requested: str, device: torch.device | str) -> str:
    """The backend to use on `device` for a requested name; an explicit one that cannot run is an error."""
    if requested not in BACKENDS:
        raise ValueError(f"unknown attention backend {requested!r} (use one of: {', '.join(BACKENDS)})")
    if requested == "auto":
        return next(name for name in EXACT_ORDER if unavailable_reason(name, device) is None)
    reason = unavailable_reason(requested, device)
    if reason is not None:
        raise ValueError(f"attention backend {requested!r} is not usable here: {reason}; use `attention: auto`")
    return requested


def select_backend(requested: str, device: torch.device | str) -> str:
    """Choose the backend every later `attention` call uses; returns the chosen name."""
    global _active
    _active = resolve_backend(requested, device)
    logger.info("attention backend: %s (asked for %s)", _active, requested)
    return _active


def active_backend() -> str:
    return _active


def backend_for(q: torch.Tensor) -> str:
    """The backend `attention` uses for this query tensor: the chosen one, or SDPA off the GPU / for big heads."""
    if _active != "sdpa" and q.device.type == "cuda" and q.size(-1) <= _MAX_HEAD_DIM:
        return _active
    return "sdpa"


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None) -> torch.Tensor:
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2),  # (B, H, Lq, D)
        k.to(q.dtype).transpose(1, 2),  # (B, H, Lk, D)
        v.to(q.dtype).transpose(1, 2),  # (B, H, Lk, D)
        scale=scale,
    )  # (B, H, Lq, D)
    return out.transpose(1, 2)  # (B, Lq, H, D)


def _gpu_kernel(name: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None) -> torch.Tensor:
    """A flash/sage kernel on (B, L, H, D) tensors, cast to fp16/bf16 as the official code does."""
    out_dtype = q.dtype
    half = q.dtype if q.dtype in _HALF_DTYPES else torch.bfloat16
    q, k, v = (t.to(half).contiguous() for t in (q, k, v))
    kernel = _kernel(name)
    if name == "sage":
        out = kernel(q, k, v, tensor_layout="NHD", is_causal=False, sm_scale=scale)
    else:
        out = kernel(q, k, v, softmax_scale=scale)
    if isinstance(out, tuple):  # some flash-attn 3 builds also return the log-sum-exp
        out = out[0]
    return out.to(out_dtype)  # (B, Lq, H, D)


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
    backend = backend_for(q)
    if backend == "sdpa":
        return _sdpa(q, k, v, scale)
    return _gpu_kernel(backend, q, k, v, scale)
