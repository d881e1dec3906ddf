"""The preview renderer: an animatic for authoring on any machine, no GPU, no weights.

Each frame is the scene image fitted to the resolution bucket (the same cover-resize and centre crop the model
uses), the speaking characters' regions outlined in their colour with a live level meter driven by their real
conditioning track, and the current lines as subtitles. It runs through the same chunk plan, cache, segment
encoding, stitching and resume code as the `multitalk` renderer, so the whole pipeline is exercised everywhere.

Frames depend only on the image, the placements, the lines overlapping the chunk and the chunk's audio, never
on the scene's total length, so an edit late in a scene leaves earlier chunks' keys (and bytes) untouched.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from multitalk.audio.subtitles import speaker_label
from multitalk.generation.streaming import Chunk
from multitalk.media.colorspace import rgb_to_yuv420, rgb_to_yuv_colour, yuv_planes
from multitalk.media.fonts import font as text_font
from multitalk.media.fonts import font_identity
from multitalk.model.buckets import choose_bucket, cover_crop_geometry
from multitalk.model.chunk_geometry import ChunkGeometry
from multitalk.renderers.base import Person, SceneContext, SpokenLine
from multitalk.timing import SAMPLES_PER_FRAME

VERSION = "preview-2"  # 2: wide-Unicode font, level bar above the subtitles, one speaker-label rule
PALETTE = ("#f2a541", "#4cc9f0", "#b5e48c", "#f72585")
OUTLINE = 5  # px
METER_WIDTH, METER_HEIGHT = 14, 90  # px
SUBTITLE_BAND = 0.22  # fraction of the frame height kept for subtitles
OVERLAY_CACHE = 16  # composed frames kept (a few per scene in flight)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


@lru_cache(maxsize=16)
def _fitted_image(path: Path, mtime_ns: int, width: int, height: int) -> np.ndarray:
    """The scene image resized to cover (width, height) and centre-cropped, uint8 (H, W, 3)."""

    with Image.open(path) as opened:
        image = opened.convert("RGB")
    (resized_h, resized_w), (top, left) = cover_crop_geometry((image.height, image.width), (height, width))
    resized = image.resize((resized_w, resized_h), resample=Image.BILINEAR)
    return np.asarray(resized)[top : top + height, left : left + width].copy()


class PreviewRenderer:
    """Deterministic animatic frames (planar yuv420p); fast enough to preview a long screenplay on two cores."""

    name = "preview"
    audio_margin_frames = 2
    pixel_format = "yuv420p"  # composed once per overlay, so the encoder is spared a per-frame conversion

    def __init__(self, geometry: ChunkGeometry | None = None):
        self._geometry = geometry or ChunkGeometry()
        self._overlays: dict[tuple, np.ndarray] = {}  # recent composed overlays (YUV), shared across chunks
        self._lock = threading.Lock()

    @property
    def geometry(self) -> ChunkGeometry:
        return self._geometry

    def identity(self) -> dict[str, Any]:
        return {"renderer": self.name, "version": VERSION, "font": font_identity()}

    def frame_size(self, context: SceneContext) -> tuple[int, int]:

        with Image.open(context.image) as opened:
            width, height = opened.size
        target_h, target_w = choose_bucket(height, width, context.resolution)
        return target_w, target_h

    def chunk_key_material(self, context: SceneContext, chunk: Chunk) -> dict[str, Any]:
        lines = [
            [line.speaker, line.display_name, line.text, line.start_frame, line.end_frame, line.on_screen]
            + ([line.action] if line.action else [])  # lines without an action keep their earlier key material
            for line in _overlapping(context.lines, chunk.deliver_start, chunk.deliver_end)
        ]
        return {"lines": lines}

    def render_chunk(
        self, context: SceneContext, chunk: Chunk, previous: Path | None, carry_out: Path
    ) -> Iterator[np.ndarray]:
        width, height = self.frame_size(context)
        base = _fitted_image(context.image, context.image.stat().st_mtime_ns, width, height)
        regions = [_region(person, context.image, width, height) for person in context.persons]
        colours = [_rgb(person.color or PALETTE[i % len(PALETTE)]) for i, person in enumerate(context.persons)]
        meter_colours = [rgb_to_yuv_colour(colour) for colour in colours]
        levels = _levels(context, chunk)  # (persons, delivered frames) in [0, 1]
        for offset, frame_index in enumerate(range(chunk.deliver_start, chunk.deliver_end)):
            active = tuple(
                i for i, line in enumerate(context.lines) if line.start_frame <= frame_index < line.end_frame
            )
            frame = self._overlay(context, base, active, regions, colours).copy()
            speaking = {context.lines[i].speaker for i in active}
            for person_index, person in enumerate(context.persons):
                if person.name in speaking:
                    level = levels[person_index, offset]
                    _draw_meter(frame, width, height, regions[person_index], meter_colours[person_index], level)
            yield frame

    def _overlay(
        self,
        context: SceneContext,
        base: np.ndarray,
        active: tuple[int, ...],
        regions: list[tuple[int, int, int, int]],
        colours: list[tuple[int, int, int]],
    ) -> np.ndarray:
        """The YUV frame for a set of active lines (lines change every few seconds: compose once, reuse)."""
        lines = tuple(context.lines[i] for i in active)
        key = (context.image, base.shape, context.persons, lines)
        with self._lock:
            cached = self._overlays.get(key)
        if cached is None:
            cached = rgb_to_yuv420(_compose(base, context, list(lines), regions, colours))
            with self._lock:
                if len(self._overlays) >= OVERLAY_CACHE:
                    self._overlays.pop(next(iter(self._overlays)))
                self._overlays[key] = cached
        return cached


def _overlapping(lines: tuple[SpokenLine, ...], start: int, end: int) -> list[SpokenLine]:
    return [line for line in lines if line.start_frame < end and line.end_frame > start]


def _region(person: Person, image: Path, width: int, height: int) -> tuple[int, int, int, int]:
    """The person's region in frame pixels: their box after the cover-crop, or their half of the frame."""
    if person.bbox is not None:
        from multitalk.model.buckets import cover_crop_geometry

        with Image.open(image) as opened:
            src_w, src_h = opened.size
        (resized_h, resized_w), (top, left) = cover_crop_geometry((src_h, src_w), (height, width))
        sx, sy = resized_w / src_w, resized_h / src_h
        x0, y0, x1, y1 = person.bbox
        box = (x0 * sx - left, y0 * sy - top, x1 * sx - left, y1 * sy - top)
        x0, y0, x1, y1 = (round(v) for v in box)
        return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    margin_x, margin_y = int(width * 0.025), int(height * 0.05)
    if person.side == "left":
        return margin_x, margin_y, width // 2 - margin_x, height - margin_y
    if person.side == "right":
        return width // 2 + margin_x, margin_y, width - margin_x, height - margin_y
    return margin_x, margin_y, width - margin_x, height - margin_y


def _levels(context: SceneContext, chunk: Chunk) -> np.ndarray:
    """Per-person loudness of each delivered frame (RMS of its 640 samples, scaled to [0, 1])."""
    count = chunk.delivered
    levels = np.zeros((len(context.persons), count), dtype=np.float32)
    if not context.persons:
        return levels
    for index in range(len(context.persons)):
        frames = context.read_track_window(index, chunk.deliver_start, chunk.deliver_end)
        rms = np.sqrt(np.mean(frames.reshape(count, SAMPLES_PER_FRAME) ** 2, axis=1))
        # -23 LUFS speech peaks near 0.2 RMS; map -50..-10 dBFS onto the meter.
        decibels = 20 * np.log10(np.maximum(rms, 1e-6))
        levels[index] = np.clip((decibels + 50) / 40, 0, 1)
    return levels


def _compose(
    base: np.ndarray,
    context: SceneContext,
    active: list[SpokenLine],
    regions: list[tuple[int, int, int, int]],
    colours: list[tuple[int, int, int]],
) -> np.ndarray:
    """The frame for one set of active lines: outlines and names of speakers, subtitles."""
    height, width = base.shape[:2]
    image = Image.fromarray(base)
    draw = ImageDraw.Draw(image, "RGBA")
    label_font = text_font(max(14, height // 28))
    speaking = {line.speaker for line in active}
    actions = {line.speaker: line.action for line in active if line.action}  # the active action, by its speaker
    for person, region, colour in zip(context.persons, regions, colours, strict=True):
        if person.name not in speaking:
            continue
        draw.rectangle(region, outline=colour, width=OUTLINE)
        x0, y0 = region[0] + OUTLINE + 4, region[1] + OUTLINE + 2
        label = person.display_name + (f" — {actions[person.name]}" if person.name in actions else "")
        draw.rectangle((x0 - 4, y0 - 2, x0 + draw.textlength(label, font=label_font) + 4, y0 + 24),
                       fill=(0, 0, 0, 150))  # fmt: skip
        draw.text((x0, y0), label, fill=colour, font=label_font)
    subtitled = [line for line in active if line.text]  # a recorded line without a transcript has no subtitle
    if subtitled:
        _subtitles(draw, subtitled, width, height)
    return np.asarray(image).copy()


def _subtitles(draw: ImageDraw.ImageDraw, active: list[SpokenLine], width: int, height: int) -> None:
    font = text_font(max(14, height // 24))
    rows: list[str] = []
    for line in active:
        prefix = f"{speaker_label(line.display_name, line.on_screen)}: "  # the same label as the SRT/VTT cues
        wrapped = textwrap.wrap(prefix + line.text, width=max(20, int(width / (font.size * 0.52))))
        rows.extend(wrapped[:3])
    rows = rows[-4:]
    line_height = int(font.size * 1.3)
    band_top = height - line_height * len(rows) - 12
    band_top = max(band_top, int(height * (1 - SUBTITLE_BAND)))
    draw.rectangle((0, band_top - 6, width, height), fill=(0, 0, 0, 160))
    for row_index, row in enumerate(rows):
        text_width = draw.textlength(row, font=font)
        draw.text(((width - text_width) / 2, band_top + row_index * line_height), row, fill="white", font=font)


def subtitle_band_top(height: int) -> int:
    """The highest row the subtitle band (with its 6 px margin) ever reaches: it grows up to SUBTITLE_BAND."""
    return int(height * (1 - SUBTITLE_BAND)) - 6


def meter_box(width: int, height: int, region: tuple[int, int, int, int]) -> tuple[int, int, int]:
    """(left, top, bottom) of a speaker's level bar: at their region's lower right, always above the subtitles."""
    _, _, x1, y1 = region
    left = max(x1 - OUTLINE - METER_WIDTH - 6, 0) // 2 * 2
    bottom = min(y1 - OUTLINE - 6, height, subtitle_band_top(height) - 4) // 2 * 2
    top = max(bottom - METER_HEIGHT, 0) // 2 * 2
    return left, top, bottom


def _draw_meter(
    frame: np.ndarray,
    width: int,
    height: int,
    region: tuple[int, int, int, int],
    colour: tuple[int, int, int],
    level: float,
) -> None:
    """A vertical level bar at the speaker's region edge, drawn straight into the YUV planes (even-aligned)."""
    left, top, bottom = meter_box(width, height, region)
    filled = round(level * (bottom - top) / 2) * 2
    y_plane, u_plane, v_plane = yuv_planes(frame, width, height)
    for plane, empty, full, scale in (
        (y_plane, 40, colour[0], 1),
        (u_plane, 128, colour[1], 2),
        (v_plane, 128, colour[2], 2),
    ):
        columns = slice(left // scale, (left + METER_WIDTH) // scale)
        plane[top // scale : (bottom - filled) // scale, columns] = empty
        plane[(bottom - filled) // scale : bottom // scale, columns] = full
