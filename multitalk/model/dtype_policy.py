"""The dtype each component of the stack runs in, by policy name.

References: Wan-Video/Wan2.1 `wan/image2video.py` and MeiGen-AI/MultiTalk `wan/multitalk.py` for the dtype each
component runs in (DiT bf16, T5 bf16, CLIP fp16, VAE fp32).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from multitalk.model.release import COMPONENTS

_DTYPE_NAMES: dict[str, torch.dtype] = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "fp32": torch.float32,
    "float32": torch.float32,
    "float": torch.float32,
}


@dataclass(frozen=True)
class DtypePolicy:
    """The dtype each component's weights are materialised in."""

    dit: torch.dtype = torch.bfloat16  # official `param_dtype`
    vae: torch.dtype = torch.float32  # the VAE runs fp32
    t5: torch.dtype = torch.bfloat16  # the release file is already bf16
    clip: torch.dtype = torch.float16  # official CLIP runs fp16
    wav2vec: torch.dtype = torch.float32  # features are computed in fp32

    def dtype_for(self, component: str) -> torch.dtype:
        if component not in COMPONENTS:
            raise ValueError(f"unknown weights component {component!r} (known: {', '.join(COMPONENTS)})")
        return getattr(self, component)

    def with_overrides(self, **overrides: torch.dtype | str) -> DtypePolicy:
        """A copy with some components changed; values may be dtypes or names like "bf16"."""
        unknown = sorted(set(overrides) - set(COMPONENTS))
        if unknown:
            raise ValueError(f"unknown weights component(s) {unknown} (known: {', '.join(COMPONENTS)})")
        return dataclasses.replace(self, **{k: parse_dtype(v) for k, v in overrides.items()})


DTYPE_POLICIES: dict[str, DtypePolicy] = {
    "official": DtypePolicy(),
    "fp32": DtypePolicy(*(torch.float32,) * len(COMPONENTS)),
}


def parse_dtype(value: torch.dtype | str) -> torch.dtype:
    """A torch dtype from a dtype or a name ("bf16", "fp16", "fp32", "bfloat16", ...)."""
    if isinstance(value, torch.dtype):
        return value
    dtype = _DTYPE_NAMES.get(str(value).lower().removeprefix("torch."))
    if dtype is None:
        raise ValueError(f"unknown dtype {value!r} (use one of: {', '.join(sorted(_DTYPE_NAMES))})")
    return dtype
