"""The scene worker: one process group on a device group, models loaded once, chunks rendered together."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from multitalk.model.checkpoint import build_on_meta
from multitalk.model.configs import ModelConfig
from multitalk.model.dit import MultiTalkDiT
from multitalk.model.dtype_policy import DtypePolicy
from multitalk.model.lora import LoraSpec, merge_loras
from multitalk.model.release import WeightsLayout, load_dit_weights


def load_dit(
    layout: WeightsLayout,
    config: ModelConfig,
    device: torch.device,
    dtypes: DtypePolicy,
    loras: Sequence[LoraSpec] = (),
) -> MultiTalkDiT:
    """The DiT alone, loaded as `MultiTalkPipeline` loads it (what a rank other than the leader holds)."""
    dit = load_dit_weights(build_on_meta(lambda: MultiTalkDiT(config.dit)), layout, dtype=dtypes.dit, device=device)
    merge_loras(dit, loras)
    return dit.eval().requires_grad_(False)
