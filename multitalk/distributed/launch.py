"""Starting a process group: spawned worker processes (or torchrun's environment) joined by torch.distributed.

A group is one `torch.distributed` world on this machine, rendezvousing over TCP on 127.0.0.1 (never another
interface). Backend: NCCL when every rank has its own CUDA device, gloo on the CPU. `spawn` is what tests and
the scene worker use; under `torchrun` the environment (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`) is
read by `init_from_env`.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

logger = logging.getLogger(__name__)

# Collectives wait this long for a slow rank before failing (a stuck rank must not hang a render for ever).
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for the group's rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backend_for(devices: Sequence[str]) -> str:
    """ "nccl" when every rank has a CUDA device, else "gloo"."""
    return "nccl" if devices and all(str(d).startswith("cuda") for d in devices) else "gloo"


def init_group(rank: int, world: int, port: int, backend: str = "gloo") -> None:
    """Join the group of `world` processes rendezvousing on 127.0.0.1:`port`."""
    dist.init_process_group(
        backend,
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=COLLECTIVE_TIMEOUT,
    )


def init_from_env(backend: str | None = None) -> None:
    """Join the group described by torchrun's environment variables; binds LOCAL_RANK's GPU under NCCL."""
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)


def _entry(rank: int, fn: Callable[..., Any], world: int, port: int, backend: str, args: tuple) -> None:
    torch.set_num_threads(1)  # one CPU thread a rank: ranks share the machine's cores
    init_group(rank, world, port, backend)
    try:
        fn(rank, world, *args)
    finally:
        dist.destroy_process_group()


def spawn(fn: Callable[..., Any], world: int, args: tuple = (), backend: str = "gloo") -> None:
    """Run `fn(rank, world, *args)` in `world` fresh processes joined in one group; raises if any rank fails.

    `fn` must be importable by name (a module-level function): the processes are spawned, not forked.
    """
    port = free_port()
    mp.start_processes(_entry, args=(fn, world, port, backend, args), nprocs=world, join=True, start_method="spawn")
