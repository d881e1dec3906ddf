"""The attention backend: SDPA equals naive softmax attention; flash-attn (GPU only) agrees at bf16."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from multitalk.model.attention import attention, backend_for


def _naive(q, k, v, scale=None):
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    logits = torch.einsum("bqhd,bkhd->bhqk", q.double(), k.double()) * scale
    return torch.einsum("bhqk,bkhd->bqhd", logits.softmax(-1), v.double())


@pytest.mark.parametrize("scale", [None, 0.3])
def test_sdpa_equals_naive_softmax_attention(scale):
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 7, 3, 16, generator=gen)
    k = torch.randn(2, 11, 3, 16, generator=gen)
    v = torch.randn(2, 11, 3, 16, generator=gen)
    assert backend_for(q) == "sdpa"
    out = attention(q, k, v, scale=scale)
    assert out.shape == (2, 7, 3, 16) and out.dtype == torch.float32
    assert (out.double() - _naive(q, k, v, scale)).abs().max() < 1e-6


def test_sdpa_keeps_input_dtype():
    q = torch.randn(1, 4, 2, 8, dtype=torch.bfloat16)
    assert attention(q, q, q).dtype == torch.bfloat16


def test_wrong_layout_is_rejected():
    with pytest.raises(ValueError, match="heads, head_dim"):
        attention(torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8))


@pytest.mark.gpu
@pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("flash_attn") is None,
    reason="needs CUDA and flash-attn",
)
def test_flash_agrees_with_sdpa_on_gpu():
    gen = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(2, 64, 4, 64, device="cuda", generator=gen) for _ in range(3))
    assert backend_for(q) == "flash"
    out = attention(q, k, v)
    assert out.dtype == torch.float32
    assert (out - _naive(q, k, v).float()).abs().max() < 2e-2
