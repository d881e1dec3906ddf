"""How the ranks of one scene's group share a sampling step: guidance groups x sequence groups.

A group of N = G * S ranks is laid out as a G x S mesh, rank = g * S + s (neighbouring ranks, usually
neighbouring GPUs on one switch, share a sequence group, which talks inside every block):
- a sequence group (fixed g) runs one DiT forward with the tokens cut over its S ranks (Ulysses);
- a guidance group (fixed s) holds one rank of every sequence group; the G sequence groups run different guidance
  passes of the same step, and their predictions meet in one all-gather over the guidance group.

`ParallelLayout.auto` picks G and S for a device count, the passes of a step (3, or 2 with text guidance 1) and
the model's head count: the layout with the least estimated work per rank (passes per guidance group / S), ties
going to more guidance groups (they exchange one latent a step instead of four all-to-alls a block).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch.distributed as dist


@dataclass(frozen=True)
class ParallelLayout:
    """G guidance groups x S sequence ranks."""

    guidance: int = 1
    sequence: int = 1

    def __post_init__(self) -> None:
        for name in ("guidance", "sequence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"parallel {name} must be a positive integer, got {value!r}")

    @property
    def world(self) -> int:
        return self.guidance * self.sequence

    def check(self, passes: int, num_heads: int) -> None:
        """Raise a clear error when this layout cannot run `passes` passes of a model with `num_heads` heads."""
        if self.guidance > passes:
            raise ValueError(f"{self.guidance} guidance groups but a step has only {passes} passes")
        if num_heads % self.sequence:
            raise ValueError(
                f"sequence parallel over {self.sequence} ranks needs a head count divisible by {self.sequence}, "
                f"the model has {num_heads} heads"
            )

    @classmethod
    def auto(cls, devices: int, passes: int, num_heads: int) -> ParallelLayout:
        """The fastest layout for `devices` ranks by the estimate above."""
        best: tuple[float, int, ParallelLayout] | None = None
        for guidance in range(1, min(devices, passes) + 1):
            if devices % guidance or num_heads % (devices // guidance):
                continue
            layout = cls(guidance, devices // guidance)
            cost = math.ceil(passes / guidance) / layout.sequence
            if best is None or (cost, -guidance) < (best[0], -best[1]):
                best = (cost, guidance, layout)
        if best is None:
            raise ValueError(
                f"no way to run {passes} guidance passes of a {num_heads}-head model on {devices} devices: the "
                f"devices must be a multiple of a pass count (1..{passes}) times a divisor of {num_heads}"
            )
        return best[2]


def assign_passes(passes: int, groups: int) -> list[list[int]]:
    """Contiguous pass indices of each guidance group, as even as possible: 3 over 2 -> [[0, 1], [2]]."""
    if not 1 <= groups <= passes:
        raise ValueError(f"cannot share {passes} passes among {groups} guidance groups")
    base, extra = divmod(passes, groups)
    out, start = [], 0
    for g in range(groups):
        n = base + (g < extra)
        out.append(list(range(start, start + n)))
        start += n
    return out


class ProcessMesh:
    """The process groups of one layout over the current world. Every rank must build it, in the same order.

    `new_group` is collective, so meshes are built by all ranks of the world together (the scene worker builds
    one per layout it meets and keeps it).
    """

    def __init__(self, layout: ParallelLayout) -> None:
        world, rank = dist.get_world_size(), dist.get_rank()
        if layout.world != world:
            raise ValueError(f"layout {layout.guidance} x {layout.sequence} needs {layout.world} ranks, got {world}")
        self.layout = layout
        g_count, s_count = layout.guidance, layout.sequence
        self.guidance_rank, self.sequence_rank = divmod(rank, s_count)
        self.sequence_group: dist.ProcessGroup | None = None
        self.guidance_group: dist.ProcessGroup | None = None
        for g in range(g_count):  # every rank creates every group (collective), keeps its own
            group = dist.new_group([g * s_count + s for s in range(s_count)])
            if g == self.guidance_rank:
                self.sequence_group = group
        for s in range(s_count):
            group = dist.new_group([g * s_count + s for g in range(g_count)])
            if s == self.sequence_rank:
                self.guidance_group = group

    @property
    def is_root(self) -> bool:
        """Rank 0 of the world: its latent is the one every rank steps from."""
        return self.guidance_rank == 0 and self.sequence_rank == 0
