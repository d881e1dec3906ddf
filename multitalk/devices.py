"""A pool of devices that scenes lease, one scene per device at a time.

Chunks of a scene are sequential (each needs the previous chunk's last frames); scenes are independent. So the
pool parallelises scenes: a scene leases a device, renders every chunk there, and gives it back, and the device
keeps its loaded models for the next scene. CPU "devices" (`cpu`, `cpu:1`, ...) make the same pool testable
anywhere and bound how many preview scenes render at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_pools: dict[tuple[str, ...], DevicePool] = {}
_pools_lock = threading.Lock()


def visible_devices() -> list[str]:
    """Every CUDA device torch can see (empty without a GPU)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return []
    return [f"cuda:{index}" for index in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def cpu_slots(count: int) -> list[str]:
    """`count` CPU pseudo-devices: `cpu`, `cpu:1`, ... (torch treats them all as the CPU)."""
    return ["cpu"] + [f"cpu:{index}" for index in range(1, max(count, 1))]


def torch_device(slot: str | torch.device) -> torch.device:
    """The torch device of a pool slot: `cpu:1` is the CPU, `cuda:0` itself."""
    import torch

    slot = str(slot)
    return torch.device("cpu") if slot.startswith("cpu") else torch.device(slot)


class DevicePool:
    """Devices handed out to one holder at a time; `lease()` blocks until one is free."""

    def __init__(self, devices: Sequence[str]):
        if not devices:
            raise ValueError("a device pool needs at least one device")
        self.devices = tuple(devices)
        self._free = list(self.devices)
        self._condition = threading.Condition()
        self.busy_peak = 0

    @contextlib.contextmanager
    def lease(self) -> Iterator[str]:
        with self._condition:
            while not self._free:
                self._condition.wait()
            device = self._free.pop(0)
            self.busy_peak = max(self.busy_peak, len(self.devices) - len(self._free))
        try:
            yield device
        finally:
            with self._condition:
                self._free.append(device)
                self._condition.notify()


def shared_pool(devices: Sequence[str]) -> DevicePool:
    """The process-wide pool for this device list (scenes of concurrent renders share devices)."""
    key = tuple(devices)
    with _pools_lock:
        if key not in _pools:
            _pools[key] = DevicePool(key)
        return _pools[key]
