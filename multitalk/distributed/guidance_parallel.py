"""Guidance-parallel sampling: the 2 or 3 model passes of a step run on different groups of ranks.

A step's passes (cond / drop_text / uncond, or cond / drop_audio) are independent forwards of the same latent.
With G guidance groups each group runs its share of them (`mesh.assign_passes`, contiguous and as even as
possible), so a step costs one latent broadcast (rank 0's latent is the one every rank steps from, whatever
floating-point drift another device could add) and one all-gather of the predictions over the guidance group.
Every rank then combines the guidance and takes the Euler step itself, identically.

Facts (not code) from the official MultiTalk / xDiT "CFG parallel": the classifier-free-guidance batch is split
over ranks and gathered before the guidance combination.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist

from multitalk.distributed.mesh import ProcessMesh, assign_passes
from multitalk.generation.sampler import Denoiser, GuidancePass, Step


class GuidanceParallelDenoiser:
    """A `sampler.Denoiser` over a mesh: this rank's guidance group runs its passes with `local`, then all meet.

    Args:
        local: runs the given passes on this rank's sequence group, returns (len(passes), C, F, H, W) float32,
            the same on every rank of that group.
        mesh: the layout's process groups.
    """

    def __init__(self, local: Denoiser, mesh: ProcessMesh) -> None:
        self.local = local
        self.mesh = mesh

    def __call__(self, latent: torch.Tensor, step: Step, passes: Sequence[GuidancePass]) -> torch.Tensor:
        mesh = self.mesh
        # In place: the sampler's own latent on every rank becomes rank 0's.
        dist.broadcast(latent, src=0)
        groups = assign_passes(len(passes), mesh.layout.guidance)
        preds = self.local(latent, step, [passes[i] for i in groups[mesh.guidance_rank]]).float()
        if mesh.layout.guidance == 1:
            return preds
        longest = max(len(g) for g in groups)
        if preds.shape[0] < longest:
            preds = torch.cat([preds, preds.new_zeros(longest - preds.shape[0], *preds.shape[1:])])
        parts = [torch.empty_like(preds) for _ in groups]
        dist.all_gather(parts, preds.contiguous(), group=mesh.guidance_group)
        return torch.cat([part[: len(g)] for part, g in zip(parts, groups, strict=True)])
