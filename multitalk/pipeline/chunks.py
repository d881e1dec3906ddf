"""Chunk keys and rendering one chunk into the store.

key(k) = H(scene key, renderer identity, encode settings, chunk plan k, the raw samples of every person's audio
window for chunk k (with the renderer's margin), whatever else the renderer says the chunk depends on, key(k−1)).
Keys chain by key, not by frames: every key is known before any rendering, an edit keeps every chunk before it,
and GPU nondeterminism in one chunk does not change the keys of the chunks after it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import numpy as np

from multitalk.generation.streaming import Chunk, plan_chunks
from multitalk.media.video_writer import EncodeSettings, SegmentWriter
from multitalk.renderers.base import Renderer, SceneContext
from multitalk.store.keys import array_digest, content_key
from multitalk.store.store import Entry, Store

logger = logging.getLogger(__name__)

CHUNK_STAGE = "chunk"
CHUNK_VERSION = "1"
SEGMENT_FILE = "segment.mp4"
CARRY_DIR = "carry"


def chunk_keys(
    scene_key: str, context: SceneContext, renderer: Renderer, encode: EncodeSettings
) -> list[tuple[Chunk, str]]:
    """Every chunk of a scene with its content key, first to last.

    Audio windows are read from the track files one at a time, so memory does not grow with the scene's length.
    """
    previous = None
    keyed = []
    for chunk in plan_chunks(context.total_frames, renderer.geometry):
        start, end = chunk.audio_window(renderer.audio_margin_frames)
        material = {
            "scene": scene_key,
            "renderer": renderer.identity(),
            "encode": encode.to_json(),
            "chunk": chunk.to_json(),
            "audio": [
                array_digest(context.read_track_window(index, start, end)) for index in range(len(context.persons))
            ],
            "extra": renderer.chunk_key_material(context, chunk),
            "previous": previous,
        }
        previous = content_key(CHUNK_STAGE, CHUNK_VERSION, material)
        keyed.append((chunk, previous))
    return keyed


def render_chunk_into_store(
    store: Store,
    key: str,
    renderer: Renderer,
    context: SceneContext,
    chunk: Chunk,
    previous: Entry | None,
    encode: EncodeSettings,
    on_frame: Callable[[int], None] | None = None,
) -> Entry:
    """Render one chunk's delivered frames straight into an H.264 segment; commit segment + carried state."""
    width, height = renderer.frame_size(context)
    with store.writing(CHUNK_STAGE, key) as temp:
        carry_out = temp / CARRY_DIR
        carry_out.mkdir()
        previous_carry = previous.path / CARRY_DIR if previous is not None else None
        frames = renderer.render_chunk(context, chunk, previous_carry, carry_out)
        with SegmentWriter(temp / SEGMENT_FILE, width, height, encode, renderer.pixel_format) as writer:
            for frame in prefetched(frames):
                writer.write(frame)
                if on_frame is not None:
                    on_frame(writer.frames)
        if writer.frames != chunk.delivered:
            raise RuntimeError(
                f"renderer {renderer.name!r} gave {writer.frames} frames for chunk {chunk.index} of scene "
                f"{context.scene_id!r}, expected {chunk.delivered}"
            )
        result: dict[str, Any] = {"chunk": chunk.to_json(), "frames": writer.frames, "size": [width, height]}
        return store.commit(CHUNK_STAGE, key, temp, result)


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


def segment_path(entry: Entry) -> Path:
    return entry.file(SEGMENT_FILE)
