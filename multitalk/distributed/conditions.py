"""A chunk's conditions sent from the group's leader to the other ranks, which hold only the DiT.

The leader (rank 0) owns the whole pipeline (umT5, CLIP, VAE, wav2vec2) and computes `ChunkConditions`; the
other ranks need only the tensors the DiT reads. One small object broadcast (shapes, dtypes, which are absent)
then one broadcast per tensor, onto each rank's own device.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.distributed as dist

from multitalk.generation.pipeline import ChunkConditions

FIELDS = tuple(f.name for f in dataclasses.fields(ChunkConditions))


def broadcast_conditions(cond: ChunkConditions | None, device: torch.device) -> ChunkConditions:
    """Rank 0 passes its conditions, the others None; every rank returns them on `device`."""
    is_root = dist.get_rank() == 0
    if is_root and cond is None:
        raise ValueError("rank 0 must pass the chunk's conditions")
    header = [None]
    if is_root:
        header = [{name: _describe(getattr(cond, name)) for name in FIELDS}]
    dist.broadcast_object_list(header, src=0, device=device if device.type == "cuda" else None)
    values = {}
    for name in FIELDS:
        spec = header[0][name]
        if spec is None:
            values[name] = None
            continue
        shape, dtype = spec
        tensor = (
            getattr(cond, name).to(device).contiguous() if is_root else torch.empty(shape, dtype=dtype, device=device)
        )
        dist.broadcast(tensor, src=0)
        values[name] = tensor
    return ChunkConditions(**values)


def _describe(tensor: torch.Tensor | None) -> tuple[tuple[int, ...], torch.dtype] | None:
    return None if tensor is None else (tuple(tensor.shape), tensor.dtype)
