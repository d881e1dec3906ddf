"""The renderer protocol: one scene context, one chunk at a time, state carried on disk.

The render spine (chunk plan, cache keys, segment encoding, stitching, resume) is the same for every renderer;
a renderer only turns (scene context, chunk, the previous chunk's carried state) into that chunk's frames.
Carried state is written to a folder that becomes part of the chunk's store entry, so a resumed render picks up
from disk exactly where an uninterrupted one would have continued.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import soundfile as sf

from multitalk.generation.streaming import Chunk
from multitalk.model.chunk_geometry import ChunkGeometry
from multitalk.screenplay.gates import Gates
from multitalk.screenplay.model_settings import SceneModel
from multitalk.timing import TRACK_SAMPLE_RATE


@dataclass(frozen=True)
class Person:
    """An on-screen speaker, in model order (person 1, person 2)."""

    name: str
    display_name: str
    side: str | None  # "left", "right", "center", or None with a bbox
    bbox: tuple[float, float, float, float] | None  # [x0, y0, x1, y1] in source-image pixels
    color: str | None = None
    track: Path | None = None  # 16 kHz conditioning track, exactly frames × 640 samples


@dataclass(frozen=True)
class SpokenLine:
    """A line on the scene timeline, in frames (end exclusive)."""

    speaker: str
    display_name: str
    text: str
    start_frame: int
    end_frame: int
    on_screen: bool
    action: str | None = None  # what the speaker does meanwhile (joins the chunk's prompt; see chunk_prompt.py)


@dataclass(frozen=True)
class SceneContext:
    """Everything a renderer may use for one scene (and nothing its cache keys do not cover)."""

    scene_id: str
    image: Path
    prompt: str
    negative_prompt: str | None
    persons: tuple[Person, ...]
    lines: tuple[SpokenLine, ...]
    total_frames: int
    resolution: str
    seed: int
    fps: int = 25
    settings: dict[str, Any] = field(default_factory=dict)  # renderer settings (sampling options...)
    model: SceneModel = field(default_factory=SceneModel)  # model settings of the scene (preset, LoRAs, memory...)
    video: Path | None = None  # a recorded take to re-voice (InfiniteTalk dubbing); `image` is then unused
    gates: Gates | None = None  # quality gates of each chunk (multitalk/quality); only `reroll` enters the keys

    def read_track_window(self, person_index: int, start_frame: int, end_frame: int) -> np.ndarray:
        """Samples of one person's track for frames [start, end) (16 kHz), silence outside the track."""
        person = self.persons[person_index]
        if person.track is None:
            raise ValueError(f"scene {self.scene_id!r}: no track for {person.name!r}")
        samples_per_frame = TRACK_SAMPLE_RATE // self.fps
        first, last = start_frame * samples_per_frame, end_frame * samples_per_frame
        window = np.zeros(last - first, dtype=np.float32)
        with sf.SoundFile(person.track) as track:
            read_start, read_end = max(first, 0), min(last, track.frames)
            if read_end > read_start:
                track.seek(read_start)
                window[read_start - first : read_end - first] = track.read(read_end - read_start, dtype="float32")
        return window


@runtime_checkable
class Renderer(Protocol):
    """What the spine needs from a renderer."""

    name: str
    audio_margin_frames: int  # audio frames each side of a chunk that its output may depend on
    pixel_format: str  # "rgb24": frames are (H, W, 3); "yuv420p": planar (H·3/2, W), see media/video_writer.py

    @property
    def geometry(self) -> ChunkGeometry:
        """Chunk sizes (the real model's 81/25, or smaller for tiny test models)."""
        ...

    def identity(self) -> dict[str, Any]:
        """What makes this renderer's output what it is (name, version, weights fingerprint...), for cache keys."""
        ...

    def frame_size(self, context: SceneContext) -> tuple[int, int]:
        """(width, height) of the frames this renderer makes for a scene."""
        ...

    def chunk_key_material(self, context: SceneContext, chunk: Chunk) -> dict[str, Any]:
        """Anything besides the audio window and the chunk plan that this chunk's frames depend on."""
        ...

    def render_chunk(
        self, context: SceneContext, chunk: Chunk, previous: Path | None, carry_out: Path
    ) -> Iterator[np.ndarray]:
        """Yield the chunk's delivered frames (uint8, in `pixel_format`), in order.

        `previous` is the previous chunk's carried-state folder (None for the first chunk); write this chunk's
        carried state into `carry_out` before the generator finishes.
        """
        ...
