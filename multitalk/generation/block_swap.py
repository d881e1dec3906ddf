"""Block swap: only some DiT blocks live on the GPU; the others wait in pinned host memory and are prefetched.

With `resident` blocks kept on the device, every other block's weights are held on the host (pinned, so the
copy is a DMA the GPU runs while it computes) and copied in just before the block runs: the copy of block i+1
is queued on a side CUDA stream while block i computes on the main stream, and block i's device copy is dropped
once it has run. The device then holds the resident blocks plus two swapped ones. With `resident = 0` this is
sequential offload of the DiT. (The official MultiTalk `num_persistent_param_in_dit`, Wan2GP and
ComfyUI-WanVideoWrapper's `blocks_to_swap` do the same.)

The numbers are the same as with every block resident: the weights are copied bit for bit and every operation
runs where it ran before, so on the CPU the output is bit-identical (tested), and on a GPU it equals the resident
run. On the CPU there is no side stream and the copy is synchronous; swapped blocks still hold no weights between
uses, which is what the test checks.

References: PyTorch "CUDA semantics" (streams, `record_stream`, pinned memory and non-blocking copies).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import nn

logger = logging.getLogger(__name__)

_EMPTY = torch.empty(0)


@dataclass
class _Swapped:
    """A swapped block: its parameters with their host copies, and whether they are on the device now."""

    block: nn.Module
    params: list[tuple[nn.Module, str, torch.Tensor]] = field(default_factory=list)  # (owner, name, host copy)
    loaded: bool = False
    ready: torch.cuda.Event | None = None


def _put(owner: nn.Module, name: str, tensor: torch.Tensor) -> None:
    """Replace a parameter (works for plain tensors and quantised tensor subclasses alike)."""
    owner._parameters[name] = nn.Parameter(tensor, requires_grad=False)


class BlockSwap:
    """Keeps `resident` blocks of `blocks` on `device` and streams the rest in from host memory per forward."""

    def __init__(self, blocks: nn.ModuleList, resident: int, device: torch.device | str) -> None:
        if resident < 0:
            raise ValueError(f"resident blocks must be >= 0, got {resident}")
        self.device = torch.device(device)
        self.blocks = blocks
        self.resident = min(resident, len(blocks))
        cuda = self.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.device) if cuda else None
        self.copies = 0  # block copies to the device (tests, benches)
        self._swapped: dict[int, _Swapped] = {}
        self._order: list[int] = []
        self._hooks = []
        for index, block in enumerate(blocks):
            if index < self.resident:
                block.to(self.device)
                continue
            swapped = _Swapped(block)
            for owner in block.modules():
                for name, param in list(owner._parameters.items()):
                    if param is None:
                        continue
                    host = param.detach().to("cpu", copy=True)
                    if cuda:
                        host = host.pin_memory()
                    swapped.params.append((owner, name, host))
                    _put(owner, name, _EMPTY.to(dtype=param.dtype))
                for name, buffer in list(owner._buffers.items()):
                    if buffer is not None:
                        owner._buffers[name] = buffer.to(self.device)
            self._swapped[index] = swapped
            self._order.append(index)
            self._hooks.append(block.register_forward_pre_hook(self._before(index)))
            self._hooks.append(block.register_forward_hook(self._after(index)))
        logger.info(
            "block swap: %d of %d DiT blocks resident on %s, %d streamed from host memory",
            self.resident,
            len(blocks),
            self.device,
            len(self._order),
        )

    @property
    def swapped_indices(self) -> tuple[int, ...]:
        return tuple(self._order)

    def _load(self, index: int) -> None:
        """Queue the host-to-device copy of a swapped block (on the side stream on CUDA)."""
        swapped = self._swapped[index]
        if swapped.loaded:
            return
        self.copies += 1
        if self.stream is None:
            for owner, name, host in swapped.params:
                _put(owner, name, host.to(self.device, copy=True))
        else:
            with torch.cuda.stream(self.stream):
                for owner, name, host in swapped.params:
                    _put(owner, name, host.to(self.device, non_blocking=True))
                swapped.ready = torch.cuda.Event()
                swapped.ready.record(self.stream)
        swapped.loaded = True

    def _before(self, index: int):
        def hook(_module: nn.Module, _args) -> None:
            self._load(index)
            swapped = self._swapped[index]
            if self.stream is not None and swapped.ready is not None:
                main = torch.cuda.current_stream(self.device)
                main.wait_event(swapped.ready)
                for owner, name, _ in swapped.params:  # memory made on the side stream, used on the main one
                    owner._parameters[name].record_stream(main)
            position = self._order.index(index)
            self._load(self._order[(position + 1) % len(self._order)])  # prefetch the next swapped block

        return hook

    def _after(self, index: int):
        def hook(_module: nn.Module, _args, _output) -> None:
            swapped = self._swapped[index]
            nxt = self._order[(self._order.index(index) + 1) % len(self._order)]
            if nxt == index:  # a single swapped block stays loaded for the next forward
                return
            for owner, name, host in swapped.params:
                _put(owner, name, _EMPTY.to(dtype=host.dtype))
            swapped.loaded = False

        return hook

    def remove(self) -> None:
        """Put every block back on the device and drop the hooks."""
        for hook in self._hooks:
            hook.remove()
        for swapped in self._swapped.values():
            for owner, name, host in swapped.params:
                _put(owner, name, host.to(self.device))
        self._swapped.clear()
        self._order.clear()
