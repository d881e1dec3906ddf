"""The scene worker: one process group per device group, models loaded once, every chunk rendered together.

A device group (`cuda:0+cuda:1+...`, see `device_groups`) gets one spawned process per device, joined in one
torch.distributed world (NCCL on GPUs, gloo on the CPU; rendezvous on 127.0.0.1). The processes live as long
as the render process, so the models stay loaded from scene to scene:

- rank 0, the leader, holds the whole MultiTalk pipeline (umT5, CLIP, VAE, wav2vec2, DiT) exactly as a
  single-device render does, reads the audio windows and the previous chunk's carry, encodes the conditions,
  decodes, colour-corrects, writes the carry and sends the frames back;
- ranks 1.. hold only the DiT. For every chunk the leader broadcasts a header (seed, chunk index, sampling
  settings) and the conditions, and all ranks sample the latent together (`sampling.sample_chunk`: guidance
  groups x sequence-parallel ranks, the layout chosen per scene by `ParallelLayout.auto` unless fixed).

The render process talks to the group through queues (`SceneWorkerGroup.render_chunk` yields the frames as the
leader decodes them), never through torch.distributed, so it can drive several groups from several threads at
once. A rank that dies (killed, out of memory) fails the chunk with a `SceneWorkerError`, the group is torn down,
and the next chunk starts a fresh one; chunks already in the store are not rendered again (the spine's resume).
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from multitalk.distributed.conditions import broadcast_conditions
from multitalk.distributed.device_groups import DeviceGroup
from multitalk.distributed.launch import backend_for, free_port, init_group
from multitalk.distributed.mesh import ParallelLayout, ProcessMesh
from multitalk.distributed.sampling import sample_chunk
from multitalk.generation.pipeline import ChunkConditions, SamplingSettings, load_dit, resolve_dtype_policy
from multitalk.generation.runtime import RuntimeOptions
from multitalk.model.attention import select_backend
from multitalk.model.configs import ModelConfig, get_config
from multitalk.model.dit import MultiTalkDiT
from multitalk.model.dtype_policy import DtypePolicy
from multitalk.model.lora import LoraSpec
from multitalk.model.release import resolve_weights

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 1800.0  # loading 14B weights onto a GPU from a slow disk can take many minutes
POLL_S = 0.5  # how often a waiting render checks that every rank is still alive

# Model loads per device in this process's groups (device -> count): a device must never load twice.
MODEL_LOADS: collections.Counter[str] = collections.Counter()


class SceneWorkerError(RuntimeError):
    """A rank of a scene worker group failed or died; the chunk was not rendered."""


@dataclass(frozen=True)
class WorkerSpec:
    """What every rank needs to load its models (sent to the spawned processes, so plain values)."""

    weights: str  # the weights root
    config: str | ModelConfig = "multitalk-14b"
    dtype_policy: str | DtypePolicy | None = None
    sampling: dict[str, Any] = field(default_factory=dict)  # the renderer's default sampling settings
    loras: tuple[LoraSpec, ...] = ()
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)  # the renderer's defaults (scenes may differ)
    layout: ParallelLayout | None = None  # None: ParallelLayout.auto per scene's pass count
    threads: int = 1  # CPU threads per rank (CPU groups share the machine's cores)


# --------------------------------------------------------------------------------------------------------
# Inside the spawned processes


class _Rank:
    """What every rank does: hold the DiT, build meshes (collectively), sample a chunk with the group."""

    def __init__(self, spec: WorkerSpec, device: torch.device, dit: MultiTalkDiT | None) -> None:
        self.spec = spec
        self.config = get_config(spec.config)
        self.device = device
        self.dit = dit
        self.runtime = RuntimeOptions()
        self.world = dist.get_world_size()
        self._meshes: dict[ParallelLayout, ProcessMesh] = {}

    def mesh_for(self, settings: SamplingSettings) -> ProcessMesh:
        passes = len(settings.guidance().passes)
        layout = self.spec.layout or ParallelLayout.auto(self.world, passes, self.config.dit.num_heads)
        if layout not in self._meshes:  # every rank gets here for the same layout in the same order
            self._meshes[layout] = ProcessMesh(layout)
        return self._meshes[layout]

    def sample(
        self, cond: ChunkConditions | None, seed: int, index: int, settings: SamplingSettings, resolution: str
    ) -> torch.Tensor:
        cond = broadcast_conditions(cond, self.device)
        select_backend(self.runtime.attention, self.device)  # as the pipeline does before sampling
        return sample_chunk(self.dit, self.config, cond, seed, index, settings, resolution, self.mesh_for(settings))


class _Leader(_Rank):
    """Rank 0: the whole renderer; its pipeline samples through the group."""

    def __init__(self, spec: WorkerSpec, device_name: str, device: torch.device, results: Any) -> None:
        from multitalk.renderers.multitalk import MultiTalkRenderer  # the model stack, imported in the worker

        self.renderer = MultiTalkRenderer(
            spec.weights,
            config=spec.config,
            device=device_name,
            dtype_policy=spec.dtype_policy,
            sampling=spec.sampling,
            loras=spec.loras,
            runtime=spec.runtime,
        )
        super().__init__(spec, device, None)
        self.results = results
        self.sampled = False
        self.renderer.pipeline()  # load now: the group reports ready once every rank holds its models

    def _sample_latent(
        self,
        cond: ChunkConditions,
        seed: int,
        chunk_index: int,
        settings: SamplingSettings,
        resolution: str,
        on_step: Callable | None = None,
    ) -> torch.Tensor:
        header = ("chunk", seed, chunk_index, settings.to_json(), resolution, self.loras, self.runtime)
        self.sampled = True  # from here on the chunk's collectives run: a failure means the group is broken
        dist.broadcast_object_list([header], src=0)
        return self.sample(cond, seed, chunk_index, settings, resolution)

    def run(self, job: tuple) -> None:
        context, chunk, previous, carry_out = job
        self.sampled = False
        try:
            # The scene's own pipeline (its LoRAs and runtime options may differ from the last scene's); the
            # other ranks rebuild their DiT to match when the header says so.
            pipeline = self.renderer.pipeline(context)
            pipeline.latent_sampler = self._sample_latent
            self.dit, self.loras, self.runtime = pipeline.dit, tuple(pipeline.loras), pipeline.runtime
            for frame in self.renderer.render_chunk(context, chunk, previous, carry_out):
                self.results.put(("frame", frame))
        except Exception:
            if self.sampled:
                raise  # inside or after the group's collectives: the group may be inconsistent, stop it
            dist.broadcast_object_list([("skip",)], src=0)  # the others wait for a header: release them
            self.results.put(("failed", traceback.format_exc()))
            return
        self.results.put(("done", chunk.index))


class _Follower(_Rank):
    """Ranks 1..: the DiT only, loaded as the leader's pipeline loads it; sample whenever the leader says so."""

    def __init__(self, spec: WorkerSpec, device: torch.device) -> None:
        super().__init__(spec, device, None)
        self.layout = resolve_weights(Path(spec.weights))
        self.dtypes = resolve_dtype_policy(spec.dtype_policy, device)
        self.block_swap = None
        self._load(tuple(spec.loras), spec.runtime)

    def _load(self, loras: tuple[LoraSpec, ...], runtime: RuntimeOptions) -> None:
        self.dit = self.block_swap = None  # free the old DiT first
        self.dit, self.block_swap = load_dit(self.config, self.layout, self.dtypes, self.device, loras, runtime)
        self.loras, self.runtime = loras, runtime

    def run(self, job: tuple) -> None:
        header: list[Any] = [None]
        dist.broadcast_object_list(header, src=0)
        if header[0][0] == "skip":
            return
        _, seed, index, settings, resolution, loras, runtime = header[0]
        if (tuple(loras), _dit_options(runtime)) != (self.loras, _dit_options(self.runtime)):
            self._load(tuple(loras), runtime)
        self.runtime = runtime
        self.sample(None, seed, index, SamplingSettings.from_mapping(settings), resolution)


def _dit_options(runtime: RuntimeOptions) -> tuple:
    """The runtime options that change how the DiT is loaded (the others apply per call)."""
    return (runtime.quantize, runtime.offload, runtime.resident_blocks, runtime.compile)


def _torch_device(name: str) -> torch.device:
    return torch.device("cpu") if name.startswith("cpu") else torch.device(name)


def _next_job(commands: Any, parent: int) -> tuple | None:
    """The next job, or None when told to stop or when the render process is gone (no orphans on a GPU)."""
    while True:
        try:
            return commands.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:
                return None


def _rank_main(
    rank: int, world: int, port: int, devices: tuple[str, ...], spec: WorkerSpec, commands: Any, results: Any
) -> None:
    """A rank's life: join the group, load, then render the jobs from `commands` until None."""
    name = devices[rank]
    parent = os.getppid()
    try:
        torch.set_num_threads(spec.threads)
        device = _torch_device(name)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        init_group(rank, world, port, backend_for(devices))
        worker: _Rank = _Leader(spec, name, device, results) if rank == 0 else _Follower(spec, device)
        results.put(("ready", rank, name, os.getpid()))
        while (job := _next_job(commands, parent)) is not None:
            worker.run(job)
    except BaseException:
        results.put(("error", rank, traceback.format_exc()))
        raise SystemExit(1) from None
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# --------------------------------------------------------------------------------------------------------
# In the render process


class SceneWorkerGroup:
    """The processes of one device group; `render_chunk` is the renderer protocol's, one chunk at a time."""

    def __init__(self, group: DeviceGroup, spec: WorkerSpec) -> None:
        self.group = group
        self.spec = spec
        self._lock = threading.Lock()
        self._processes: list[Any] = []
        self._commands: list[Any] = []
        self._results: Any = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return bool(self._processes) and all(p.is_alive() for p in self._processes)

    def start(self) -> None:
        """Spawn the ranks and wait until every one has loaded its models."""
        context = mp.get_context("spawn")
        devices = self.group.devices
        self._results = context.Queue()
        self._commands = [context.Queue() for _ in devices]
        port = free_port()
        self._processes = [
            context.Process(
                target=_rank_main,
                args=(rank, len(devices), port, devices, self.spec, self._commands[rank], self._results),
                name=f"multitalk-{self.group.name}-rank{rank}",
                daemon=True,
            )
            for rank in range(len(devices))
        ]
        for process in self._processes:
            process.start()
        self.starts += 1
        ready = 0
        while ready < len(devices):
            message = self._next(READY_TIMEOUT_S)
            if message[0] != "ready":
                self._fail(message)
            MODEL_LOADS[message[2]] += 1
            ready += 1
        logger.info("scene worker group %s ready (%d ranks)", self.group.name, len(devices))

    def render_chunk(self, context: Any, chunk: Any, previous: Path | None, carry_out: Path) -> Iterator[np.ndarray]:
        """The chunk's delivered frames, as the leader decodes them; the leader writes the carry to `carry_out`."""
        with self._lock:
            if not self.running:
                self.stop()
                self.start()
            job = (context, chunk, previous, Path(carry_out))
            for commands in self._commands:
                commands.put(job)
            finished = False
            try:
                while True:
                    message = self._next(None)
                    kind = message[0]
                    if kind == "frame":
                        yield message[1]
                    elif kind == "done":
                        finished = True
                        return
                    elif kind == "failed":  # failed before sampling (a bad carry...); the group is fine
                        finished = True
                        raise SceneWorkerError(f"chunk {chunk.index} failed on {self.group.name}:\n{message[1]}")
                    else:
                        finished = True
                        self._fail(message)
            finally:
                if not finished and self.running:  # the consumer stopped early: let the chunk finish unread
                    self._drain()

    def _next(self, timeout: float | None) -> tuple:
        """The next message from the ranks; raises SceneWorkerError when one has died or time is up."""
        waited = 0.0
        while True:
            try:
                return self._results.get(timeout=POLL_S)
            except queue.Empty:
                waited += POLL_S
            dead = [(r, p.exitcode) for r, p in enumerate(self._processes) if not p.is_alive()]
            if dead:
                try:  # a dying rank may have said why
                    return self._results.get(timeout=POLL_S)
                except queue.Empty:
                    pass
                self.stop()
                ranks = ", ".join(f"rank {r} ({self.group.devices[r]}) exit code {c}" for r, c in dead)
                raise SceneWorkerError(f"scene worker group {self.group.name} lost {ranks}")
            if timeout is not None and waited >= timeout:
                self.stop()
                raise SceneWorkerError(f"scene worker group {self.group.name} not ready after {timeout:.0f}s")

    def _drain(self) -> None:
        while True:
            try:
                message = self._next(None)
            except SceneWorkerError:
                return
            if message[0] != "frame":
                if message[0] == "error":
                    self.stop()
                return

    def _fail(self, message: tuple) -> None:
        time.sleep(POLL_S)  # a rank that died takes the others' collectives down with it: let it be seen dead
        dead = [(r, p.exitcode) for r, p in enumerate(self._processes) if not p.is_alive() and p.exitcode != 1]
        self.stop()
        if message[0] == "error":
            _, rank, trace = message
            lost = "".join(f" (lost rank {r} ({self.group.devices[r]}) exit code {c})" for r, c in dead if r != rank)
            raise SceneWorkerError(
                f"rank {rank} ({self.group.devices[rank]}) of {self.group.name} failed{lost}:\n{trace}"
            )
        raise SceneWorkerError(f"unexpected message from {self.group.name}: {message[0]!r}")

    def stop(self) -> None:
        """Ask every rank to finish, then end whatever is left (a killed group's survivors)."""
        for process, commands in zip(self._processes, self._commands, strict=False):
            if process.is_alive():
                commands.put(None)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        self._processes = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes]


_GROUPS: dict[str, tuple[WorkerSpec, SceneWorkerGroup]] = {}
_GROUPS_LOCK = threading.Lock()


def worker_group(group: DeviceGroup, spec: WorkerSpec) -> SceneWorkerGroup:
    """The process-wide worker group of a device group (started on its first chunk); a new spec replaces it."""
    with _GROUPS_LOCK:
        held = _GROUPS.get(group.name)
        if held is not None and held[0] == spec:
            return held[1]
        if held is not None:
            logger.info("restarting scene worker group %s (weights or settings changed)", group.name)
            held[1].stop()
        worker = SceneWorkerGroup(group, spec)
        _GROUPS[group.name] = (spec, worker)
        return worker


@atexit.register
def stop_worker_groups() -> None:
    """End every group's processes (at exit, or in tests)."""
    with _GROUPS_LOCK:
        for _, worker in _GROUPS.values():
            worker.stop()
        _GROUPS.clear()
