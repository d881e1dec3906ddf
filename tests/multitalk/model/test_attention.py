"""Attention backends: SDPA equals naive attention; the choice (auto / explicit) and the official casts; GPU kernels."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from multitalk.model import attention as A
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
    A.select_backend("flash2", "cuda")
    assert backend_for(q) == "flash2"
    out = attention(q, k, v)
    A.select_backend("sdpa", "cpu")
    assert out.dtype == torch.float32
    assert (out - _naive(q, k, v).float()).abs().max() < 2e-2


@pytest.fixture
def fake_gpu(monkeypatch):
    """A pretend CUDA device of a given capability with a given set of attention packages installed."""

    def install(capability: tuple[int, int] | None, packages: set[str]) -> None:
        monkeypatch.setattr(A, "_capability", lambda device: capability)
        monkeypatch.setattr(A, "_kernel", lambda name: (lambda *a, **k: None) if name in packages else None)

    yield install
    A.select_backend("sdpa", "cpu")


def test_auto_picks_the_fastest_exact_backend_and_never_sage(fake_gpu):
    fake_gpu((9, 0), {"flash3", "flash2", "sage"})
    assert A.resolve_backend("auto", "cuda") == "flash3"
    fake_gpu((8, 0), {"flash3", "flash2", "sage"})  # A100: no FA3
    assert A.resolve_backend("auto", "cuda") == "flash2"
    fake_gpu((8, 9), {"sage"})
    assert A.resolve_backend("auto", "cuda") == "sdpa"
    assert A.resolve_backend("sage", "cuda") == "sage"
    fake_gpu(None, {"flash3", "flash2", "sage"})  # the CPU
    assert A.resolve_backend("auto", "cpu") == "sdpa"


def test_an_explicit_backend_that_cannot_run_says_why(fake_gpu):
    fake_gpu((8, 6), {"flash2"})
    with pytest.raises(ValueError, match=r"'flash3' is not usable here: flash3 needs compute capability 9.0"):
        A.resolve_backend("flash3", "cuda")
    with pytest.raises(ValueError, match=r"'sage' is not usable here: sage needs the sageattention package"):
        A.resolve_backend("sage", "cuda")
    fake_gpu(None, set())
    with pytest.raises(ValueError, match="flash2 needs a CUDA GPU"):
        A.resolve_backend("flash2", "cpu")
    with pytest.raises(ValueError, match="unknown attention backend 'flash4'"):
        A.resolve_backend("flash4", "cpu")


def test_gpu_kernels_get_half_precision_inputs_and_return_the_input_dtype(monkeypatch):
    """The official casts: fp32 q/k/v reach the kernel as bf16 and contiguous, the result comes back fp32."""
    seen = {}

    def kernel(q, k, v, softmax_scale=None):
        seen.update(dtypes={t.dtype for t in (q, k, v)}, contiguous=all(t.is_contiguous() for t in (q, k, v)))
        return A._sdpa(q.float(), k.float(), v.float(), softmax_scale).to(q.dtype), None  # (out, lse) like FA3

    monkeypatch.setattr(A, "_kernel", lambda name: kernel)
    q, k, v = (torch.randn(1, 5, 2, 8).transpose(1, 2).transpose(1, 2) for _ in range(3))
    out = A._gpu_kernel("flash3", q, k, v, None)
    assert seen == {"dtypes": {torch.bfloat16}, "contiguous": True}
    assert out.dtype == torch.float32
    assert (out - A._sdpa(q, k, v, None)).abs().max() < 3e-2
    fp16 = A._gpu_kernel("flash2", q.half(), k.half(), v.half(), None)
    assert seen["dtypes"] == {torch.float16} and fp16.dtype == torch.float16


def test_cpu_tensors_use_sdpa_whatever_was_chosen(fake_gpu):
    fake_gpu((9, 0), {"flash3"})
    assert A.select_backend("auto", "cuda") == "flash3"
    assert backend_for(torch.randn(1, 4, 2, 8)) == "sdpa"
