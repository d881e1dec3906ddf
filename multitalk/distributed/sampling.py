"""One chunk's latent sampled by a group of ranks (guidance x sequence parallel), equal to one device's.

`sample_chunk` is `MultiTalkPipeline.sample_latent` for a rank of a mesh: the same schedule, the same chunk
generator for the initial noise and every motion re-noising (drawn on the CPU, so every rank draws the same),
the same guidance and TeaCache, with the DiT forward of a pass cut over the sequence group and the passes of a
step shared by the guidance groups. Every rank of the mesh returns the same latent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from multitalk.distributed.guidance_parallel import GuidanceParallelDenoiser
from multitalk.distributed.mesh import ProcessMesh
from multitalk.distributed.sequence_parallel import SequenceShard
from multitalk.generation.pipeline import ChunkConditions, SamplingSettings
from multitalk.generation.sampler import (
    GuidancePass,
    Step,
    chunk_generator,
    draw_noise,
    sample,
    timesteps,
)
from multitalk.generation.teacache import TeaCache, TeaCacheSettings, cached_forward
from multitalk.model.configs import ModelConfig
from multitalk.model.dit import DiTInputs, MultiTalkDiT


class ShardedDenoiser:
    """The guidance passes given to it, as one batched forward, tokens cut over `sequence_group` when set."""

    def __init__(
        self,
        dit: MultiTalkDiT,
        cond: ChunkConditions,
        teacache: TeaCache | None,
        sequence_group: object | None,
    ) -> None:
        self.dit = dit
        self.cond = cond
        self.teacache = teacache
        self.sequence_group = sequence_group
        self.forwards = 0
        audio = cond.audio
        self.zero_audio = torch.zeros((1, *audio.shape[1:]), dtype=audio.dtype, device=audio.device)

    def _prepare(self, latent: torch.Tensor, step: Step, passes: Sequence[GuidancePass]) -> DiTInputs:
        c = self.cond
        x = latent[None].expand(len(passes), *latent.shape)  # (n, C, F, H, W)
        contexts = [c.context_null if p.negative_prompt else c.context for p in passes]
        audio = [c.audio if p.audio else self.zero_audio for p in passes]
        inputs = self.dit.prepare(x, step.t, contexts, c.clip_fea, c.y, audio, c.masks)
        if self.sequence_group is None:
            return inputs
        shard = SequenceShard(self.sequence_group, inputs.x.shape[1], self.dit.cfg.num_heads)
        return shard.shard_inputs(inputs)

    def __call__(self, latent: torch.Tensor, step: Step, passes: Sequence[GuidancePass]) -> torch.Tensor:
        self.forwards += 1
        names = [p.name for p in passes]

        def prepare(indices: Sequence[int]) -> DiTInputs:
            return self._prepare(latent, step, [passes[i] for i in indices])

        with torch.no_grad():
            return cached_forward(self.dit, prepare, names, step.index, self.teacache)


def sample_chunk(
    dit: MultiTalkDiT,
    config: ModelConfig,
    cond: ChunkConditions,
    seed: int,
    chunk_index: int,
    settings: SamplingSettings,
    resolution: str,
    mesh: ProcessMesh | None,
    on_step: Callable[[Step, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """This chunk's final latent (z, F_lat, h, w) float32; with a mesh, every rank of it calls this together."""
    device = dit.patch_embedding.weight.device
    generator = chunk_generator(seed, chunk_index)  # CPU: the same draws on every rank and device
    _, _, f_lat, h, w = cond.y.shape
    noise = draw_noise((config.vae.z_dim, f_lat, h, w), generator).to(device)
    guidance = settings.guidance()
    shift = settings.shift if settings.shift is not None else config.shift_for(resolution)
    teacache = None
    if settings.teacache is not None:
        teacache = TeaCache(TeaCacheSettings(threshold=settings.teacache, resolution=resolution), settings.steps)
    if mesh is not None:
        mesh.layout.check(len(guidance.passes), dit.cfg.num_heads)
    sequence_group = mesh.sequence_group if mesh is not None and mesh.layout.sequence > 1 else None
    denoise = ShardedDenoiser(dit, cond, teacache, sequence_group)
    return sample(
        denoise if mesh is None else GuidanceParallelDenoiser(denoise, mesh),
        noise,
        guidance=guidance,
        schedule=timesteps(settings.steps, shift),
        motion=cond.motion,
        generator=generator,
        on_step=on_step,
    )
