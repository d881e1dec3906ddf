"""A picture of who speaks when: one lane per speaker per scene, overlaps marked, a time axis in seconds.

Authors use it to check pauses and interruptions before spending GPU time (`multitalk timeline FILE`). All scenes
share one time scale, so their lengths compare at a glance. Drawn with Pillow alone (no matplotlib dependency).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from PIL import Image, ImageColor, ImageDraw, ImageFont

from multitalk.audio.align import Timeline
from multitalk.audio.audio_io import write_bytes
from multitalk.media.fonts import font
from multitalk.screenplay.schema import Scene, Screenplay

WIDTH = 1400
LABEL_WIDTH = 170
RIGHT_MARGIN = 30
TITLE_HEIGHT = 30
LANE_HEIGHT = 26
AXIS_HEIGHT = 24
SCENE_SPACING = 18
PALETTE = ("#3b76af", "#e1812c", "#3a923a", "#c03d3e", "#9372b2", "#845b53", "#d684bd", "#7f7f7f")
OVERLAP_FILL = (214, 39, 40, 60)  # translucent red over every lane where two lines sound at once
TICK_STEPS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300)
MIN_TICK_PIXELS = 60


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return font(size)  # wide Unicode coverage (em dashes, accents), see multitalk/media/fonts.py


def _colours(screenplay: Screenplay) -> dict[str, tuple[int, int, int]]:
    colours = {}
    for index, (name, character) in enumerate(screenplay.characters.items()):
        colours[name] = ImageColor.getrgb(character.color or PALETTE[index % len(PALETTE)])[:3]
    return colours


def _darker(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(int(c * 0.6) for c in colour)  # type: ignore[return-value]


def _overlaps(timeline: Timeline) -> list[tuple[int, int]]:
    """Frame intervals where lines of two different speakers sound together."""
    spans = []
    lines = sorted(timeline.lines, key=lambda line: line.start_frame)
    for i, a in enumerate(lines):
        for b in lines[i + 1 :]:
            if b.start_frame >= a.end_frame:
                break
            if a.speaker != b.speaker:
                spans.append((b.start_frame, min(a.end_frame, b.end_frame)))
    return spans


def _tick_step(pixels_per_second: float) -> float:
    return next((s for s in TICK_STEPS if s * pixels_per_second >= MIN_TICK_PIXELS), TICK_STEPS[-1])


def screen_position(scene: Scene, speaker: str) -> str:
    """Where an on-screen speaker stands, as a viewer sees it: left, right or center (boxes by their centres)."""
    placement = scene.cast[speaker]
    if placement.side is not None:
        return placement.side
    others = [p for name, p in scene.cast.items() if name != speaker and name in scene.on_screen_speakers()]
    if not others or placement.bbox is None:
        return "center"
    centre = (placement.bbox[0] + placement.bbox[2]) / 2
    other = others[0]
    if other.bbox is not None:
        other_centre = (other.bbox[0] + other.bbox[2]) / 2
        return "left" if centre < other_centre else "right"
    return "right" if other.side == "left" else "left"


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font: ImageFont.ImageFont) -> str:
    """`text` cut (with an ellipsis) to fit `width` pixels, or "" when not even a letter fits."""
    if draw.textlength(text, font=font) <= width:
        return text
    fits, too_long = 0, len(text)  # the longest prefix that fits with its ellipsis, by bisection (text widens)
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if draw.textlength(text[:middle] + "…", font=font) <= width:
            fits = middle
        else:
            too_long = middle
    return text[:fits] + "…" if fits else ""


def draw_timeline(screenplay: Screenplay, timelines: Mapping[str, Timeline], out_png: Path | str) -> Path:
    """Draw the scenes of `screenplay` that have a timeline (in screenplay order) into a PNG; returns its path."""
    return write_bytes(out_png, timeline_png(screenplay, timelines))


def timeline_png(screenplay: Screenplay, timelines: Mapping[str, Timeline]) -> bytes:
    """The picture `draw_timeline` writes, as PNG bytes (drawn in a thread while a render stitches its final)."""
    scenes = [scene for scene in screenplay.scenes if scene.id in timelines]
    if not scenes:
        raise ValueError("no timelines to draw; build at least one scene's timeline first")
    longest = max(timelines[scene.id].duration for scene in scenes)
    plot_width = WIDTH - LABEL_WIDTH - RIGHT_MARGIN
    scale = plot_width / max(longest, 1e-3)  # pixels per second, shared by every scene
    heights = [TITLE_HEIGHT + LANE_HEIGHT * len(timelines[s.id].speakers) + AXIS_HEIGHT + SCENE_SPACING for s in scenes]
    image = Image.new("RGB", (WIDTH, sum(heights) + SCENE_SPACING), "white")
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw, shade = ImageDraw.Draw(image), ImageDraw.Draw(overlay)
    title_font, label_font, small_font = _font(15), _font(13), _font(11)
    colours = _colours(screenplay)

    def x_at(seconds: float) -> int:
        return LABEL_WIDTH + round(seconds * scale)

    top = SCENE_SPACING
    for scene, height in zip(scenes, heights, strict=True):
        timeline = timelines[scene.id]
        speakers = [
            *timeline.on_screen_speakers,
            *(s for s in timeline.speakers if s not in timeline.on_screen_speakers),
        ]
        title = f"{scene.id}  ·  {timeline.duration:.2f} s  ·  {timeline.frames} frames"
        draw.text((10, top + 6), title, fill="black", font=title_font)
        lanes_top = top + TITLE_HEIGHT
        lanes_bottom = lanes_top + LANE_HEIGHT * len(speakers)
        draw.rectangle([x_at(0), lanes_top, x_at(timeline.duration), lanes_bottom], fill=(246, 246, 246))
        for row, speaker in enumerate(speakers):
            y = lanes_top + row * LANE_HEIGHT
            role = screen_position(scene, speaker) if speaker in timeline.on_screen_speakers else "voice-over"
            label = _fit(draw, f"{screenplay.display_name(speaker)} ({role})", LABEL_WIDTH - 16, label_font)
            draw.text((10, y + 6), label, fill="black", font=label_font)
            draw.line([x_at(0), y + LANE_HEIGHT, x_at(timeline.duration), y + LANE_HEIGHT], fill=(225, 225, 225))
        for line in timeline.lines:
            row = speakers.index(line.speaker)
            y = lanes_top + row * LANE_HEIGHT
            box = [
                x_at(line.start(timeline.fps)),
                y + 3,
                max(x_at(line.end(timeline.fps)) - 1, x_at(line.start(timeline.fps)) + 1),
                y + LANE_HEIGHT - 3,
            ]
            colour = colours.get(line.speaker, (128, 128, 128))
            draw.rectangle(box, fill=colour, outline=_darker(colour))
            text = _fit(draw, line.text or "(recording)", box[2] - box[0] - 6, small_font)
            if text:
                draw.text((box[0] + 3, y + 7), text, fill="white", font=small_font)
        for start, end in _overlaps(timeline):
            shade.rectangle(
                [x_at(start / timeline.fps), lanes_top, x_at(end / timeline.fps), lanes_bottom], fill=OVERLAP_FILL
            )
        axis_y = lanes_bottom + 2
        draw.line([x_at(0), axis_y, x_at(timeline.duration), axis_y], fill="black")
        step = _tick_step(scale)
        tick = 0.0
        while tick <= timeline.duration + 1e-9:
            x = x_at(tick)
            draw.line([x, axis_y, x, axis_y + 4], fill="black")
            draw.text((x + 2, axis_y + 5), f"{tick:g}s", fill=(80, 80, 80), font=small_font)
            tick += step
        draw.line([x_at(timeline.duration), lanes_top - 4, x_at(timeline.duration), axis_y + 4], fill=(120, 120, 120))
        top += height
    image = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
