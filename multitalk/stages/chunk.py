"""Stage `chunk`: one streamed chunk of a scene, encoded straight into an H.264 segment, with its carried state.

key(k) = H(scene visual key, renderer identity, encode settings, chunk plan k, the raw samples of every person's
audio window for chunk k (with the renderer's margin), whatever else the renderer says the chunk depends on,
key(k−1)). Keys chain by key, not by frames: every key is known before any rendering, an edit keeps every chunk
before it, and GPU nondeterminism in one chunk does not change the keys of the chunks after it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import numpy as np

from multitalk.generation.streaming import Chunk, plan_chunks
from multitalk.media.video_writer import EncodeSettings, SegmentWriter
from multitalk.quality import policy
from multitalk.renderers.base import Renderer, SceneContext
from multitalk.stages.stage import Stage
from multitalk.store.keys import array_digest, content_key
from multitalk.store.store import ENTRY_FILE, Entry, Store

STAGE = Stage.CHUNK
VERSION = "1"
SEGMENT_FILE = "segment.mp4"
CARRY_DIR = "carry"


@dataclass(frozen=True)
class PlannedChunk:
    """A chunk of the plan with its key and the key of the chunk it continues from."""

    chunk: Chunk
    key: str
    previous: str | None  # key of chunk k−1 (None for the first chunk)


@dataclass(frozen=True)
class RenderedChunk:
    """A chunk in the store."""

    key: str
    index: int
    frames: int
    segment: Path  # H.264 segment of the delivered frames
    carry: Path  # the state the next chunk continues from

    @classmethod
    def of(cls, entry: Entry) -> RenderedChunk:
        return cls(
            entry.key,
            int(entry.result["chunk"]["index"]),
            int(entry.result["frames"]),
            entry.file(SEGMENT_FILE),
            entry.path / CARRY_DIR,
        )


class MissingInputError(RuntimeError):
    """A stage's input entry left the store between planning and building; re-running rebuilds it."""


def key(
    scene_key: str,
    context: SceneContext,
    renderer: Renderer,
    encode: EncodeSettings,
    chunk: Chunk,
    previous: str | None,
) -> str:
    """The key of one chunk (its audio windows read from the track files)."""
    start, end = chunk.audio_window(renderer.audio_margin_frames)
    material = {
        "scene": scene_key,
        "renderer": renderer.identity(),
        "encode": encode.to_json(),
        "chunk": chunk.to_json(),
        "audio": [_audio_digest(context, index, start, end) for index in range(len(context.persons))],
        "extra": renderer.chunk_key_material(context, chunk),
        "previous": previous,
    }
    gates = policy.key_material(renderer, context)  # quality gates: only `reroll` mode changes the frames kept
    if gates is not None:
        material["gates"] = gates
    return content_key(STAGE, VERSION, material)


_AUDIO_DIGESTS: dict[tuple[str, int, int, int, int, int, int], str] = {}
_AUDIO_DIGESTS_KEPT = 16384  # windows (~100 bytes each); a screenplay of 300 chunks and two voices uses 600


def _audio_digest(context: SceneContext, index: int, start: int, end: int) -> str:
    """The digest of one person's audio window, remembered per track file as it is on disk: a render plans its
    chunks more than once (the up-to-date check, the stored-scene check, the scene itself)."""
    track = context.persons[index].track
    if track is None:  # read_track_window says which person has no track
        return array_digest(context.read_track_window(index, start, end))
    info = track.stat()
    memo = (str(track), info.st_ino, info.st_mtime_ns, info.st_size, context.fps, start, end)
    digest = _AUDIO_DIGESTS.get(memo)
    if digest is None:
        digest = array_digest(context.read_track_window(index, start, end))
        if len(_AUDIO_DIGESTS) >= _AUDIO_DIGESTS_KEPT:
            _AUDIO_DIGESTS.clear()
        _AUDIO_DIGESTS[memo] = digest
    return digest


def plan(scene_key: str, context: SceneContext, renderer: Renderer, encode: EncodeSettings) -> list[PlannedChunk]:
    """Every chunk of a scene with its key, first to last (one audio window in memory at a time)."""
    previous = None
    planned = []
    for chunk in plan_chunks(context.total_frames, renderer.geometry):
        this = key(scene_key, context, renderer, encode, chunk, previous)
        planned.append(PlannedChunk(chunk, this, previous))
        previous = this
    return planned


def load(store: Store, key: str) -> RenderedChunk | None:
    entry = store.get(STAGE, key)
    return RenderedChunk.of(entry) if entry is not None else None


def build(
    store: Store,
    planned: PlannedChunk,
    renderer: Renderer,
    context: SceneContext,
    encode: EncodeSettings,
    on_frame: Callable[[int], None] | None = None,
) -> RenderedChunk:
    """Render one chunk's delivered frames into an H.264 segment; commit segment + carried state.

    With quality gates (`defaults.gates`, multitalk/quality/) the entry also holds the chunk's gate scores; in
    `reroll` mode a failing chunk is rendered again with derived seeds and the kept attempt fills the slot.
    """
    chunk = planned.chunk
    previous_carry = None
    if planned.previous is not None:
        previous = load(store, planned.previous)
        if previous is None:
            raise MissingInputError(
                f"scene {context.scene_id!r}: chunk {chunk.index - 1} is missing from the store, so chunk "
                f"{chunk.index} has no motion frames to continue from; re-run to render it again"
            )
        previous_carry = previous.carry
    judge = None
    if policy.gated(renderer, context) is not None:
        from multitalk.quality import reroll  # frames, Lab, faces: loaded only when a gate runs

        judge = reroll.judge_for(renderer, context, chunk)

    def render_into(key: str, attempt_context: SceneContext) -> Entry:
        return _render_entry(store, key, renderer, attempt_context, chunk, previous_carry, encode, on_frame, judge)

    if judge is None or judge.gates.mode != "reroll":
        return RenderedChunk.of(render_into(planned.key, context))
    # Quality gates, `reroll` mode: attempts are entries of their own; the slot holds the kept one (hard links).
    kept, record = reroll.reroll(store, STAGE, planned.key, judge.gates, context, chunk, render_into)
    with store.writing(STAGE, planned.key) as temp:
        reroll.link_entry_files(kept.path, temp, skip=ENTRY_FILE)
        return RenderedChunk.of(store.commit(STAGE, planned.key, temp, {**kept.result, "gates": record}))


def _render_entry(
    store: Store,
    key: str,
    renderer: Renderer,
    context: SceneContext,
    chunk: Chunk,
    previous_carry: Path | None,
    encode: EncodeSettings,
    on_frame: Callable[[int], None] | None,
    judge: Any,
) -> Entry:
    """Render the chunk into the entry `key`: segment, carried state and, when gated, the gate scores."""
    started = time.monotonic()
    width, height = renderer.frame_size(context)
    with store.writing(STAGE, key) as temp:
        carry_out = temp / CARRY_DIR
        carry_out.mkdir()
        frames = renderer.render_chunk(context, chunk, previous_carry, carry_out)
        with SegmentWriter(temp / SEGMENT_FILE, width, height, encode, renderer.pixel_format) as writer:
            for frame in prefetched(frames):
                writer.write(frame)
                if judge is not None:
                    judge.see(frame)
                if on_frame is not None:
                    on_frame(writer.frames)
        if writer.frames != chunk.delivered:
            raise RuntimeError(
                f"renderer {renderer.name!r} gave {writer.frames} frames for chunk {chunk.index} of scene "
                f"{context.scene_id!r}, expected {chunk.delivered}"
            )
        result: dict[str, Any] = {
            "chunk": chunk.to_json(),
            "frames": writer.frames,
            "size": [width, height],
            "render_seconds": round(time.monotonic() - started, 3),  # for bench/bench_noop.py; not in any key
        }
        if judge is not None:
            result["gates"] = {"seed": context.seed, **judge.verdict().to_json()}
        return store.commit(STAGE, key, temp, result)


def prefetched(frames: Iterator[np.ndarray], depth: int = 6) -> Iterator[np.ndarray]:
    """Run a frame generator in a background thread, `depth` frames ahead.

    Rendering (numpy, PIL, torch — all release the GIL for their heavy parts) then overlaps with the encoder
    reading the pipe, instead of the two taking turns. Errors in the generator surface here, in order.
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for frame in frames:
                if stop.is_set():
                    return
                queue.put(("frame", frame))
            queue.put(("end", None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            queue.put(("error", error))

    worker = threading.Thread(target=produce, name="frame-producer", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(Empty):
                queue.get(timeout=0.05)
        worker.join()
