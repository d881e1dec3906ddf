"""Device groups: which devices render one scene together, written `cuda:0+cuda:1` in `--device`.

A render gets a list of device slots; each slot renders one scene at a time. A slot is one device (`cuda:3`,
`cpu:1`) or a group of devices joined by `+` (`cuda:0+cuda:1+cuda:2+cuda:3`) that renders a scene together, its
chunks' sampling spread over the group (guidance x sequence parallel, `multitalk.distributed.mesh`).
`--gpus-per-scene N` cuts a plain device list into consecutive groups of N.

Device names are canonical, so one physical device has one name: `cuda` is `cuda:0` (what torch means by it),
`cpu:0` is `cpu` (CPU pseudo-devices `cpu`, `cpu:1`, ... let tests run groups without a GPU). A device may appear
in only one slot: two slots on one card would load the models onto it twice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

GROUP_SEPARATOR = "+"
_CUDA = re.compile(r"^cuda(?::(\d+))?$")
_CPU = re.compile(r"^cpu(?::([a-z0-9_-]+))?$")  # CPU pseudo-devices: any label, `cpu:0` is `cpu`


class DeviceSpecError(ValueError):
    """A `--device` / `--gpus-per-scene` value that names no usable device layout."""


def canonical_device(name: str) -> str:
    """`cuda` -> `cuda:0`, `cpu:0` -> `cpu`, others unchanged; raises DeviceSpecError for anything else."""
    text = str(name).strip().lower()
    cuda, cpu = _CUDA.match(text), _CPU.match(text)
    if cuda is not None:
        return f"cuda:{int(cuda.group(1) or 0)}"
    if cpu is not None:
        label = cpu.group(1)
        return "cpu" if label is None or (label.isdigit() and int(label) == 0) else f"cpu:{label}"
    raise DeviceSpecError(
        f"device {name!r} is not a device name: use cuda, cuda:N, cpu or cpu:N "
        f"(join devices with {GROUP_SEPARATOR!r} to render one scene across them, e.g. cuda:0+cuda:1)"
    )


@dataclass(frozen=True)
class DeviceGroup:
    """The devices of one slot, in rank order (rank 0 leads: it runs the encoders, the VAE and the store IO)."""

    devices: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.devices:
            raise DeviceSpecError("a device group needs at least one device")
        if len(set(self.devices)) != len(self.devices):
            raise DeviceSpecError(f"device group {self.name!r} names a device twice")
        kinds = {d.split(":")[0] for d in self.devices}
        if len(kinds) > 1:
            raise DeviceSpecError(f"device group {self.name!r} mixes CPU and CUDA devices")

    @property
    def name(self) -> str:
        """The slot name: the devices joined by `+` (`cuda:0+cuda:1`); a lone device is its own name."""
        return GROUP_SEPARATOR.join(self.devices)

    @property
    def size(self) -> int:
        return len(self.devices)

    @classmethod
    def parse(cls, spec: str) -> DeviceGroup:
        """`cuda:0+cuda:1` -> DeviceGroup(("cuda:0", "cuda:1")); names are made canonical."""
        parts = [p for p in str(spec).split(GROUP_SEPARATOR)]
        if any(not p.strip() for p in parts):
            raise DeviceSpecError(f"device group {spec!r} has an empty member (write e.g. cuda:0+cuda:1)")
        return cls(tuple(canonical_device(p) for p in parts))


def device_groups(specs: Sequence[str], gpus_per_scene: int | None = None) -> list[DeviceGroup]:
    """The device slots of a render from `--device` values (each a device or a `+` group) and `--gpus-per-scene`.

    With `gpus_per_scene`, lone devices are taken in order and cut into groups of that many (explicit groups stay
    as written). Raises DeviceSpecError when a device appears twice (also as `cuda` and `cuda:0`) or the lone
    devices do not divide into groups of `gpus_per_scene`.
    """
    if gpus_per_scene is not None and (isinstance(gpus_per_scene, bool) or int(gpus_per_scene) < 1):
        raise DeviceSpecError(f"--gpus-per-scene must be a positive integer, got {gpus_per_scene!r}")
    groups: list[DeviceGroup] = []
    singles: list[str] = []
    for spec in specs:
        for item in str(spec).split(","):
            if not item.strip():
                continue
            group = DeviceGroup.parse(item)
            if group.size == 1 and gpus_per_scene and gpus_per_scene > 1:
                singles.append(group.devices[0])
            else:
                groups.append(group)
    if singles:
        n = int(gpus_per_scene)
        if len(singles) % n:
            raise DeviceSpecError(
                f"--gpus-per-scene {n} needs a multiple of {n} devices, got {len(singles)} ({', '.join(singles)})"
            )
        groups += [DeviceGroup(tuple(singles[i : i + n])) for i in range(0, len(singles), n)]
    seen: dict[str, str] = {}
    for group in groups:
        for device in group.devices:
            if device in seen:
                raise DeviceSpecError(
                    f"device {device} is in two slots ({seen[device]} and {group.name}); each device renders for "
                    f"one slot only, or its models would be loaded twice (note: cuda is cuda:0, cpu is cpu:0)"
                )
            seen[device] = group.name
    if not groups:
        raise DeviceSpecError("no devices given")
    return groups


def slot_names(specs: Sequence[str], gpus_per_scene: int | None = None) -> list[str]:
    """`device_groups` as the pool's slot names (`cuda:0+cuda:1`, `cuda:2`, ...)."""
    return [group.name for group in device_groups(specs, gpus_per_scene)]
