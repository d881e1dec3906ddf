"""The `multitalk` renderer on a device group: same keys and frames as one device, the sampling spread over N.

`GroupRenderer` is a `MultiTalkRenderer` whose chunks are rendered by the group's `SceneWorkerGroup` (spawned
processes that keep the models loaded between scenes). Everything the spine reads for cache keys (identity,
frame size, key material, geometry) is the single-device renderer's on the group's lead device, so a scene
started on one GPU can resume on a group and back: the store cannot tell them apart. The frames agree with a
single device's to fp32 rounding (guidance and attention sums are reordered); see the README's GPU section.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from multitalk.distributed.device_groups import DeviceGroup
from multitalk.distributed.mesh import ParallelLayout
from multitalk.distributed.scene_worker import SceneWorkerGroup, WorkerSpec, worker_group
from multitalk.generation.streaming import Chunk
from multitalk.renderers.base import SceneContext
from multitalk.renderers.multitalk import MultiTalkRenderer


class GroupRenderer(MultiTalkRenderer):
    """MultiTalk over the devices of `group`; arguments as `MultiTalkRenderer`, plus an optional fixed layout.

    Args:
        group: the devices, lead device first.
        layout: guidance x sequence ranks; None picks `ParallelLayout.auto` for each scene's pass count.
        threads: CPU threads per rank (CPU groups).
    """

    def __init__(
        self,
        group: DeviceGroup,
        weights: str | Path | None = None,
        *,
        layout: ParallelLayout | None = None,
        threads: int = 1,
        **options: Any,
    ) -> None:
        super().__init__(weights, device=group.devices[0], **options)
        if layout is not None and layout.world != group.size:
            raise ValueError(
                f"layout {layout.guidance} x {layout.sequence} does not fit the {group.size} devices of {group.name}"
            )
        self.group = group
        self.slot = group.name
        self.spec = WorkerSpec(
            weights=str(self.weights_root),
            config=self.config,
            dtype_policy=self.dtype_policy,
            sampling=self.sampling.to_json(),
            loras=self.loras,
            runtime=self.runtime,
            layout=layout,
            threads=threads,
        )

    @property
    def workers(self) -> SceneWorkerGroup:
        """The group's processes (shared by every renderer of the same group and spec in this process)."""
        return worker_group(self.group, self.spec)

    def render_chunk(
        self, context: SceneContext, chunk: Chunk, previous: Path | None, carry_out: Path
    ) -> Iterator[np.ndarray]:
        if context.fps != 25:
            raise ValueError(f"scene {context.scene_id!r}: MultiTalk renders at 25 fps, got {context.fps}")
        yield from self.workers.render_chunk(context, chunk, previous, carry_out)

    def pipeline(self) -> Any:
        raise RuntimeError(f"the models of {self.group.name} live in its worker processes, not in this one")
