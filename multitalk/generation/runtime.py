"""How a pipeline uses the machine: quantisation, memory mode, attention kernel, compilation, pass batching.

These are chosen once when a pipeline loads and never change behind the caller's back: in particular the guidance
passes of a step run batched or one at a time as chosen here, and a CUDA out-of-memory error is reported with what
to change rather than silently switching to sequential passes (which would make a resumed render differ from an
uninterrupted one).

Memory modes (`offload`), from most to least resident:
- `none`: everything on the GPU; umT5 lives on the host and visits the GPU for each new prompt;
- `t5`: umT5 encodes on the CPU and never touches the GPU (about 11 GiB of VRAM less at 14B);
- `blocks`: DiT block swap, `resident_blocks` of the 40 blocks stay on the GPU, the rest stream from pinned host
  memory, prefetched on a side stream (`block_swap.py`); umT5 visits the GPU alone, between chunks;
- `sequential`: block swap with no resident block.

Which of these change the output: `quantize` and an approximate attention kernel (`sage`) do, and are part of the
chunk keys; tiled VAE decode does too. The memory modes, exact attention kernels, `compile` and pass batching
compute the same numbers (up to the kernel rounding a GPU never guarantees anyway) and stay out of the keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from multitalk.model.quantize import MODES as QUANTIZE_MODES
from multitalk.model.vae_tiling import VAETiles

OFFLOAD_MODES = ("none", "t5", "blocks", "sequential")
DEFAULT_RESIDENT_BLOCKS = 10


@dataclass(frozen=True)
class RuntimeOptions:
    """The machine-facing choices of one loaded pipeline (hashable: part of the loaded-pipeline cache key)."""

    quantize: str = "none"  # none | fp8 | int8 (the DiT blocks' linear weights)
    offload: str = "none"  # none | t5 | blocks | sequential
    resident_blocks: int | None = None  # DiT blocks kept on the GPU with offload "blocks" (default 10)
    attention: str = "auto"  # auto | flash3 | flash2 | sage | sdpa
    compile: bool = False  # torch.compile each DiT block
    batch_passes: bool = True  # the guidance passes of a step as one batched forward
    vae_tiles: VAETiles | None = None  # tiled VAE decode (None: whole frames)

    def __post_init__(self) -> None:
        if self.quantize not in QUANTIZE_MODES:
            raise ValueError(f"unknown quantize {self.quantize!r} (use one of: {', '.join(QUANTIZE_MODES)})")
        if self.offload not in OFFLOAD_MODES:
            raise ValueError(f"unknown offload {self.offload!r} (use one of: {', '.join(OFFLOAD_MODES)})")
        if self.resident_blocks is not None and (self.offload != "blocks" or self.resident_blocks < 0):
            raise ValueError("resident_blocks is a count >= 0 and needs offload 'blocks'")

    @property
    def blocks_on_gpu(self) -> int | None:
        """DiT blocks resident on the device: None = all of them (no block swap)."""
        if self.offload == "blocks":
            return DEFAULT_RESIDENT_BLOCKS if self.resident_blocks is None else self.resident_blocks
        return 0 if self.offload == "sequential" else None

    @property
    def t5_on_cpu(self) -> bool:
        return self.offload == "t5"


def compile_blocks(blocks: nn.ModuleList, backend: str = "inductor") -> None:
    """`torch.compile` each DiT block in place (all 40 share one graph; shapes differ per resolution only)."""
    for block in blocks:
        block.compile(backend=backend, dynamic=False)
