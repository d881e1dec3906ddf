"""Rank functions for the distributed tests (spawned processes import them by name) and their shared inputs."""

from __future__ import annotations

from pathlib import Path

import torch

from multitalk.distributed.sequence_parallel import SequenceShard
from multitalk.model.dit import DiTConfig, MultiTalkDiT

# 4 heads so 2 and 4 ranks divide them; 3 latent frames of 3x3 tokens: L = 27 splits unevenly over 2 and 4
# ranks, slices start inside frames, and frame 0's 9 keys span two ranks at 4.
TINY_SP = DiTConfig(
    dim=32,
    ffn_dim=64,
    freq_dim=16,
    num_heads=4,
    num_layers=2,
    text_dim=16,
    text_len=8,
    clip_tokens=5,
    clip_dim=16,
    audio_blocks=2,
    audio_channels=8,
    audio_intermediate_dim=16,
    audio_output_dim=16,
    audio_context_tokens=4,
)
LATENT = (16, 3, 6, 6)  # (C, F, H, W)


def tiny_dit(seed: int = 0) -> MultiTalkDiT:
    torch.manual_seed(seed)
    model = MultiTalkDiT(TINY_SP).eval().requires_grad_(False)
    with torch.no_grad():  # default init leaves biases and modulations tiny; make every path matter
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def dit_cases(seed: int = 1) -> dict[str, dict]:
    """Forward arguments of the checked cases: one person, two persons, null audio, and a mixed 3-pass batch."""
    g = torch.Generator().manual_seed(seed)
    cfg = TINY_SP
    c, f, h, w = LATENT
    frames = 1 + cfg.vae_scale * (f - 1)

    def rand(*shape):
        return torch.randn(*shape, generator=g)

    def audio(persons):
        return rand(persons, frames, cfg.audio_window, cfg.audio_blocks, cfg.audio_channels)

    masks = torch.zeros(3, h, w)
    masks[0, :, :2] = 1  # person 1 on the left
    masks[1, :, 4:] = 1  # person 2 on the right
    masks[2, :, 2:4] = 1  # background between them
    common = {"clip_fea": rand(1, cfg.clip_tokens, cfg.clip_dim), "y": rand(1, cfg.in_dim - c, f, h, w)}
    prompt, negative = rand(6, cfg.text_dim), rand(5, cfg.text_dim)
    zero = torch.zeros(1, frames, cfg.audio_window, cfg.audio_blocks, cfg.audio_channels)
    two = audio(2)
    return {
        "one_person": {
            **common,
            "x": rand(1, *LATENT),
            "t": torch.tensor([700.0]),
            "context": [prompt],
            "audio": [audio(1)],
        },
        "two_persons": {
            **common,
            "x": rand(1, *LATENT),
            "t": torch.tensor([400.0]),
            "context": [prompt],
            "audio": [two],
            "ref_target_masks": masks,
        },
        "null_audio": {
            **common,
            "x": rand(1, *LATENT),
            "t": torch.tensor([900.0]),
            "context": [negative],
            "audio": [zero],
        },
        "three_passes": {
            **common,
            "x": rand(1, *LATENT).expand(3, -1, -1, -1, -1),
            "t": torch.tensor([250.0]),
            "context": [prompt, negative, negative],
            "audio": [two, two, zero],
            "ref_target_masks": masks,
        },
    }


def single_forward(model: MultiTalkDiT, args: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(**args)


def sharded_forward(model: MultiTalkDiT, args: dict) -> torch.Tensor:
    """The same forward with the tokens cut over the default group."""
    with torch.no_grad():
        inputs = model.prepare(**args)
        sharded = SequenceShard(None, inputs.x.shape[1], model.cfg.num_heads).shard_inputs(inputs)
        return model.finish(sharded, model.run_blocks(sharded))


def sequence_parallel_rank(rank: int, world: int, out_dir: str) -> None:
    """Every case sequence-parallel over the whole group; each rank saves what it computed."""
    model = tiny_dit()
    outputs = {name: sharded_forward(model, args) for name, args in dit_cases().items()}
    torch.save(outputs, Path(out_dir) / f"rank{rank}.pt")


# --------------------------------------------------------------------------------------------------------
# One chunk over a mesh


def chunk_rank(rank: int, world: int, release: str, cond_path: str, out_dir: str, runs: list) -> None:
    """Each run (name, guidance, sequence, sampling settings, seed, chunk index): this rank's final latent."""
    from multitalk.distributed.conditions import broadcast_conditions
    from multitalk.distributed.mesh import ParallelLayout, ProcessMesh
    from multitalk.distributed.sampling import sample_chunk
    from multitalk.generation.pipeline import ChunkConditions, SamplingSettings, load_dit
    from multitalk.model.configs import CONFIGS
    from multitalk.model.dtype_policy import DTYPE_POLICIES
    from multitalk.model.release import resolve_weights

    config = CONFIGS["tiny"]
    dit, _ = load_dit(config, resolve_weights(Path(release)), DTYPE_POLICIES["fp32"], torch.device("cpu"))
    cond = None
    if rank == 0:  # only the leader has the conditions; the others receive them
        saved = torch.load(cond_path, weights_only=True)
        cond = ChunkConditions(**{k: saved.get(k) for k in ChunkConditions.__dataclass_fields__})
    cond = broadcast_conditions(cond, torch.device("cpu"))
    latents = {}
    for name, guidance, sequence, settings, seed, index in runs:
        mesh = ProcessMesh(ParallelLayout(guidance, sequence))
        latents[name] = sample_chunk(dit, config, cond, seed, index, SamplingSettings(**settings), "480p", mesh)
    torch.save(latents, Path(out_dir) / f"rank{rank}.pt")
