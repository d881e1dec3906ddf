"""Gated chunks: judge each chunk as it lands and, in `reroll` mode, render a failing one again with a new seed.

A chunk's slot keeps its planned key (so every key of a render is still known up front, and the clip key follows
from the chunk keys as before). In `reroll` mode each attempt is a store entry of its own under an attempt key,
H(slot key, attempt number, attempt seed), holding its segment, its carried state and its gate scores; the slot
entry is then the kept attempt (its files hard-linked, not copied) with every attempt's scores recorded. The kept
attempt is the first that passes, else the best ranked (`Verdict.rank`). A resumed render finds the attempts
already in the store, re-reads their scores, makes the same choice and renders nothing twice. The gate settings
enter the slot key only in `reroll` mode, the one mode that changes what a render produces.

Attempt 0 renders with the scene's own seed, so a chunk that passes at once is byte-identical to an ungated
render of it; attempt n > 0 uses a seed derived from (scene seed, chunk index, n).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multitalk.generation.streaming import Chunk
from multitalk.quality.gates import check_chunk
from multitalk.quality.material import scene_material
from multitalk.quality.policy import attempt_key, attempt_seed, gated
from multitalk.quality.verdict import Verdict
from multitalk.quality.voice_activity import voice_activity
from multitalk.renderers.base import Renderer, SceneContext
from multitalk.screenplay.gates import Gates
from multitalk.store.store import Entry, Store

logger = logging.getLogger(__name__)

# What renders an attempt into the store: (key, context with the attempt's seed) -> the committed entry.
RenderAttempt = Callable[[str, SceneContext], Entry]


@dataclass
class ChunkJudge:
    """Collects a chunk's frames as they stream to the encoder, then scores them."""

    gates: Gates
    context: SceneContext
    chunk: Chunk
    frame_size: tuple[int, int]  # (width, height)

    def __post_init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def see(self, frame: np.ndarray) -> None:
        self.frames.append(np.array(frame, copy=True))  # renderers may reuse their buffers

    def verdict(self) -> Verdict:
        frames = np.stack(self.frames) if self.frames else np.zeros((0, self.frame_size[1], self.frame_size[0], 3))
        self.frames = []
        limits = self.gates.limits()
        material = scene_material(self.context, self.frame_size, identities=limits["identity"].enabled)
        start, end, count = self.chunk.deliver_start, self.chunk.deliver_end, self.chunk.delivered
        speaking = [
            voice_activity(self.context.read_track_window(i, start, end), count)
            for i in range(len(self.context.persons))
        ]
        verdict = check_chunk(frames, material, speaking, limits)
        if not verdict.passed:
            logger.warning("%s chunk %d: gates failed: %s", self.context.scene_id, self.chunk.index, verdict.summary())
        return verdict


def judge_for(renderer: Renderer, context: SceneContext, chunk: Chunk) -> ChunkJudge | None:
    gates = gated(renderer, context)
    return ChunkJudge(gates, context, chunk, renderer.frame_size(context)) if gates is not None else None


def choose(verdicts: list[Verdict]) -> int:
    """The attempt to keep: the first that passes, else the best ranked (the earliest of equals)."""
    for index, verdict in enumerate(verdicts):
        if verdict.passed:
            return index
    return max(range(len(verdicts)), key=lambda i: (verdicts[i].rank(), -i))


def reroll(
    store: Store,
    stage: str,
    slot_key: str,
    gates: Gates,
    context: SceneContext,
    chunk: Chunk,
    render_attempt: RenderAttempt,
) -> tuple[Entry, dict[str, Any]]:
    """Render (or find) attempts until one passes or `gates.attempts` re-rolls are spent.

    Returns the kept attempt's entry and the slot's `gates` record: the kept attempt's scores plus `kept` and
    `attempts`, one line per attempt (seed, key, passed, failed checks, whether this call rendered it).
    """
    verdicts: list[Verdict] = []
    entries: list[Entry] = []
    lines: list[dict[str, Any]] = []
    for attempt in range(gates.attempts + 1):
        seed = attempt_seed(context.seed, chunk.index, attempt)
        key = attempt_key(stage, slot_key, attempt, seed)
        entry = store.get(stage, key)
        fresh = entry is None
        if fresh:
            entry = render_attempt(key, dataclasses.replace(context, seed=seed))
        verdict = Verdict.from_json(entry.result["gates"])
        verdicts.append(verdict)
        entries.append(entry)
        lines.append({"attempt": attempt, "seed": seed, "key": key, "passed": verdict.passed, "failed": verdict.failed})
        if fresh:
            logger.info(
                "%s chunk %d attempt %d (seed %d): %s", context.scene_id, chunk.index, attempt, seed, verdict.summary()
            )
        if verdict.passed:
            break
    kept = choose(verdicts)
    record = {**entries[kept].result["gates"], "kept": kept, "attempts": lines}
    if not verdicts[kept].passed:
        logger.warning(
            "%s chunk %d fails its gates after %d attempts; kept attempt %d (%s)",
            context.scene_id,
            chunk.index,
            len(verdicts),
            kept,
            verdicts[kept].summary(),
        )
    return entries[kept], record


def link_entry_files(source: Path, target: Path, skip: str) -> None:
    """Hard-link every file of an entry folder into `target` (copying where links are impossible)."""
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        name = file.relative_to(source)
        if name.as_posix() == skip:
            continue
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(file, destination)
        except OSError:
            destination.write_bytes(file.read_bytes())
