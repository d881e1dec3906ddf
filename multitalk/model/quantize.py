"""Weight quantisation of the DiT's linear layers (fp8 e4m3 or int8, one scale per output channel), via torchao.

Only the linear layers inside the 40 transformer blocks are quantised (≈ 97 % of the DiT's 18.9 B parameters: the
attention projections, the FFNs and the audio cross-attention); the patch and condition embeddings, the time
projection, the head and the audio projector stay in their dtype, as the official optimum-quanto recipe leaves the
small, sensitive layers alone.

- fp8: e4m3 weights with per-output-channel (per-row) scales. On a GPU with fp8 tensor cores (compute capability
  ≥ 8.9: L40S, 4090, H100, H200) the activations are quantised per token on the fly and the product runs in
  `torch._scaled_mm` (torchao `Float8DynamicActivationFloat8WeightConfig`, `PerRow`); elsewhere (A100, 3090, the
  CPU) the weights are dequantised for a plain matmul (`Float8WeightOnlyConfig`).
- int8: symmetric int8 weights with per-output-channel scales, dequantised for the matmul (`Int8WeightOnlyConfig`).

`quantize_blocks` runs one block at a time on the target device, so the bf16 copy of the DiT never exists in full
there: the loader keeps the bf16 weights on the host and each block is moved over, quantised and kept.

torchao (the `quant` extra) is imported on first use; it is slow to import and, on a CPU-only machine, logs that
its CUDA extensions cannot load.

References: pytorch/ao `torchao.quantization` (`quantize_`, the configs above); MeiGen-AI/MultiTalk
`--quant fp8|int8` (optimum-quanto); Micikevicius et al., "FP8 Formats for Deep Learning" (2022), arXiv:2209.05433.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

MODES = ("none", "fp8", "int8")
FP8_MIN_CAPABILITY = (8, 9)  # first GPUs with fp8 tensor cores (Ada, Hopper)


def fp8_matmul_available(device: torch.device | str) -> bool:
    """True when fp8 products can run in `torch._scaled_mm` on `device`."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available() or not hasattr(torch, "_scaled_mm"):
        return False
    return torch.cuda.get_device_capability(device) >= FP8_MIN_CAPABILITY


def kernel_for(mode: str, device: torch.device | str) -> str:
    """How the quantised product is computed on `device`: "scaled_mm" (fp8 tensor cores) or "dequant"."""
    if mode not in MODES or mode == "none":
        raise ValueError(f"unknown quantisation {mode!r} (use one of: fp8, int8)")
    return "scaled_mm" if mode == "fp8" and fp8_matmul_available(device) else "dequant"


def _torchao() -> Any:
    try:
        import torchao.quantization
    except ImportError as e:
        raise ImportError(
            "quantize: fp8 / int8 needs torchao: pip install 'multitalk[quant]' (or torchao>=0.18,<0.19)"
        ) from e
    return torchao.quantization


def _config(mode: str, device: torch.device | str) -> Any:
    _torchao()
    from torchao.quantization import (
        Float8DynamicActivationFloat8WeightConfig,
        Float8WeightOnlyConfig,
        Int8WeightOnlyConfig,
        PerRow,
    )

    if mode == "int8":
        return Int8WeightOnlyConfig(granularity=PerRow())
    if kernel_for(mode, device) == "scaled_mm":
        return Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())
    return Float8WeightOnlyConfig(granularity=PerRow())


def _is_linear(module: nn.Module, _fqn: str) -> bool:
    return isinstance(module, nn.Linear)


@torch.no_grad()
def quantize_blocks(
    blocks: nn.ModuleList, mode: str, device: torch.device | str, keep: Iterable[int] | None = None
) -> int:
    """Quantise every linear layer of `blocks` in place, block by block on `device`; returns how many.

    `keep`: the blocks that stay on `device` afterwards (None: all); the others go back to the host as soon as
    they are quantised (block swap), so the device holds one unquantised block at most.
    """
    if mode == "none":
        return 0
    from torchao.quantization import quantize_

    config = _config(mode, device)
    kept = None if keep is None else set(keep)
    count = 0
    for index, block in enumerate(blocks):
        home = next(block.parameters()).device
        block.to(device)
        count += sum(1 for m in block.modules() if isinstance(m, nn.Linear))
        quantize_(block, config, filter_fn=_is_linear, device=torch.device(device))
        if kept is not None and index not in kept:
            block.to(home)
    logger.info("quantised %d linear layers to %s (%s)", count, mode, kernel_for(mode, device))
    return count
