"""A test renderer that lip-syncs the scene photo to the voices, and swaps the speakers on one (chunk, seed).

Frames are the reference as the model would see it, each person's mouth a darker band whose height follows a voice's
loudness in that frame, and a faint flicker so no frame repeats. On `bad_chunk` with the scene's own seed (the
first attempt), each mouth follows the *other* person's voice: the speaker-binding gate must catch it, and a re-roll
with the next derived seed renders the chunk right. Deterministic, so a resumed render is byte-identical.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from multitalk.generation.streaming import Chunk, ChunkGeometry
from multitalk.model.buckets import choose_bucket
from multitalk.quality.material import scene_material
from multitalk.quality.speaker_binding import mouth_box
from multitalk.quality.voice_activity import frame_rms
from multitalk.renderers.base import SceneContext


class LipSyncRenderer:
    name = "lipsync-test"
    audio_margin_frames = 0
    pixel_format = "rgb24"

    def __init__(self, bad_chunk: int, bad_seed: int, log: Path | None = None):
        self.bad_chunk, self.bad_seed = bad_chunk, bad_seed
        self.log = log  # one line per rendered chunk attempt: "index seed"
        self.renders: list[tuple[int, int]] = []

    @property
    def geometry(self) -> ChunkGeometry:
        return ChunkGeometry(frame_num=21, motion_frames=5)  # 21 frames first, then 16 a chunk

    def identity(self) -> dict[str, Any]:
        return {"renderer": self.name, "version": "1", "bad": [self.bad_chunk, self.bad_seed]}

    def frame_size(self, context: SceneContext) -> tuple[int, int]:
        with Image.open(context.image) as opened:
            width, height = opened.size
        target_h, target_w = choose_bucket(height, width, context.resolution)
        return target_w, target_h

    def chunk_key_material(self, context: SceneContext, chunk: Chunk) -> dict[str, Any]:
        return {}

    def render_chunk(
        self, context: SceneContext, chunk: Chunk, previous: Path | None, carry_out: Path
    ) -> Iterator[np.ndarray]:
        material = scene_material(context, self.frame_size(context), identities=False)
        count = chunk.delivered
        levels = [
            frame_rms(context.read_track_window(i, chunk.deliver_start, chunk.deliver_end), count)
            for i in range(len(context.persons))
        ]
        swapped = chunk.index == self.bad_chunk and context.seed == self.bad_seed
        drivers = levels[::-1] if swapped and len(levels) == 2 else levels
        (carry_out / "state.json").write_text(json.dumps({"chunk": chunk.index, "seed": context.seed}))
        self.renders.append((chunk.index, context.seed))
        if self.log is not None:
            with self.log.open("a") as handle:
                handle.write(f"{chunk.index} {context.seed}\n")
        base = material.reference.astype(np.int16)
        for t in range(count):
            frame = base + (t + chunk.deliver_start) % 3  # flicker: no two neighbouring frames are equal
            for face, level in zip(material.faces, drivers, strict=False):
                if face is None:
                    continue
                x0, y0, x1, y1 = mouth_box(face)
                opening = int(0.5 * (y1 - y0) * min(1.0, float(level[t]) * 6))
                if opening > 0:  # an open mouth: the lips' middle darkens, the face stays recognisable
                    top = y0 + (y1 - y0) // 4
                    frame[top : top + opening, x0:x1] = frame[top : top + opening, x0:x1] * 3 // 5
            yield frame.clip(0, 255).astype(np.uint8)
