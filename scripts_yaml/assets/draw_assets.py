"""Draw the reference images of the bundled example screenplays.

Every picture in this folder is ours: this script draws it from scratch with Pillow (shapes and colours only, no
photographs, fonts or downloaded art), deterministically, so the PNGs can be re-created bit for bit at any time:

    cd /work/main            # the repository root
    .venv/bin/python scripts_yaml/assets/draw_assets.py

It writes one PNG per setting next to itself and prints, for each, where the people stand as boxes
`[x0, y0, x1, y1]` in image pixels (the `bbox` values the screenplays use). Images are 832x480 (about 16:9, close
to MultiTalk's 480p buckets); the heads sit between y=100 and y=300 so the bucket's centre crop keeps them whole.
People are drawn at stable places: with two people, each stays inside their own half of the image, so both a
left/right split and the printed boxes separate them cleanly.

Drawing is done at 3x and scaled down (smooth edges without anti-aliasing tricks); any random detail (stars,
book spines, clouds) comes from a `random.Random` seeded per image.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

W, H = 832, 480  # output size (width, height)
SS = 3  # supersampling factor: draw at 3x, scale down at the end
OUT_DIR = Path(__file__).resolve().parent

Colour = str | tuple[int, int, int]
Box = tuple[float, float, float, float]


# --- colours ------------------------------------------------------------------------------------------------


def rgb(colour: Colour) -> tuple[int, int, int]:
    if isinstance(colour, tuple):
        return colour
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def mix(a: Colour, b: Colour, t: float) -> tuple[int, int, int]:
    """`a` blended towards `b` by t (0: a, 1: b)."""
    ra, rb = rgb(a), rgb(b)
    return tuple(round(x + (y - x) * t) for x, y in zip(ra, rb, strict=True))  # type: ignore[return-value]


def shade(colour: Colour, factor: float) -> tuple[int, int, int]:
    """Darker (factor < 1) or lighter (factor > 1) version of a colour."""
    return mix(colour, "#000000", 1 - factor) if factor < 1 else mix(colour, "#ffffff", factor - 1)


# --- a canvas in output pixels ------------------------------------------------------------------------------


class Painter:
    """Pillow drawing in output-pixel coordinates on a supersampled canvas."""

    def __init__(self, background: Colour = "#ffffff"):
        self.image = Image.new("RGB", (W * SS, H * SS), rgb(background))
        self.draw = ImageDraw.Draw(self.image)

    @staticmethod
    def _s(values) -> list[float]:
        return [v * SS for v in values]

    def rect(self, box: Box, fill: Colour, radius: float = 0, outline: Colour | None = None, width: float = 0):
        self.draw.rounded_rectangle(
            self._s(box),
            radius=radius * SS,
            fill=rgb(fill),
            outline=rgb(outline) if outline else None,
            width=round(width * SS),
        )

    def ellipse(self, box: Box, fill: Colour | None, outline: Colour | None = None, width: float = 0):
        self.draw.ellipse(
            self._s(box),
            fill=rgb(fill) if fill else None,
            outline=rgb(outline) if outline else None,
            width=round(width * SS),
        )

    def circle(self, cx: float, cy: float, r: float, fill: Colour):
        self.ellipse((cx - r, cy - r, cx + r, cy + r), fill)

    def poly(self, points: list[tuple[float, float]], fill: Colour):
        self.draw.polygon([(x * SS, y * SS) for x, y in points], fill=rgb(fill))

    def line(self, points: list[tuple[float, float]], fill: Colour, width: float):
        self.draw.line(
            [(x * SS, y * SS) for x, y in points], fill=rgb(fill), width=max(1, round(width * SS)), joint="curve"
        )

    def arc(self, box: Box, start: float, end: float, fill: Colour, width: float):
        self.draw.arc(self._s(box), start, end, fill=rgb(fill), width=max(1, round(width * SS)))

    def chord(self, box: Box, start: float, end: float, fill: Colour):
        self.draw.chord(self._s(box), start, end, fill=rgb(fill))

    def gradient(self, box: Box, top: Colour, bottom: Colour):
        """A vertical colour gradient filling `box`."""
        x0, y0, x1, y1 = (round(v * SS) for v in box)
        t = np.linspace(0.0, 1.0, y1 - y0)[:, None, None]
        band = (1 - t) * np.array(rgb(top), float) + t * np.array(rgb(bottom), float)
        band = np.repeat(band, x1 - x0, axis=1).round().astype(np.uint8)
        self.image.paste(Image.fromarray(band, "RGB"), (x0, y0))

    def glow(self, cx: float, cy: float, r: float, colour: Colour, base: Colour, rings: int = 6):
        """A soft disc of light: concentric circles fading from `colour` into `base`."""
        for i in range(rings, 0, -1):
            self.circle(cx, cy, r * i / rings, mix(base, colour, 1 - (i - 1) / rings))

    def finish(self) -> Image.Image:
        return self.image.resize((W, H), Image.Resampling.LANCZOS)


# --- people -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Look:
    """How a person looks: skin, hair, clothes, and a few extras."""

    skin: str
    hair: str
    hair_style: str  # short | long | bob | bun | curly | bald
    top: str  # clothing colour
    accent: str  # collar, scarf or apron colour
    eyes: str = "#4b3324"
    lips: str = "#b0605a"
    glasses: bool = False
    beard: bool = False
    scarf: bool = False
    apron: bool = False


@dataclass(frozen=True)
class Pose:
    """Where a person is drawn: head centre, head radius (half the head's height), facing -1 (left) or +1."""

    cx: float
    head_y: float
    r: float
    facing: int = 0


def draw_person(p: Painter, look: Look, pose: Pose, bottom: float = H) -> list[int]:
    """Draw a person from the waist up; return their bounding box [x0, y0, x1, y1] in output pixels."""
    cx, hy, r, f = pose.cx, pose.head_y, pose.r, pose.facing
    hw = 0.8 * r  # half width of the head
    skin_dark = shade(look.skin, 0.86)
    hair_dark = shade(look.hair, 0.7)
    shoulder_y = hy + 1.2 * r
    half_body = 1.95 * hw

    # hair that falls behind the head and shoulders
    if look.hair_style in ("long", "bob"):
        length = 1.95 * r if look.hair_style == "long" else 0.75 * r
        p.rect((cx - 1.22 * hw, hy - 1.02 * r, cx + 1.22 * hw, hy + length), look.hair, radius=hw)

    # neck, arms, body
    p.rect((cx - 0.36 * hw, hy + 0.4 * r, cx + 0.36 * hw, shoulder_y + 0.3 * r), skin_dark, radius=0.1 * r)
    sleeve = shade(look.top, 0.82)
    for side in (-1, 1):
        x_out = cx + side * (half_body + 0.08 * r)
        x_in = cx + side * (half_body - 0.55 * r)
        p.rect((min(x_out, x_in), shoulder_y + 0.25 * r, max(x_out, x_in), bottom + r), sleeve, radius=0.3 * r)
    p.rect((cx - half_body + 0.2 * r, shoulder_y, cx + half_body - 0.2 * r, bottom + r), look.top, radius=0.75 * r)
    # neckline (a V of skin) and collar points
    p.poly(
        [(cx - 0.4 * hw, shoulder_y - 0.05 * r), (cx + 0.4 * hw, shoulder_y - 0.05 * r), (cx, shoulder_y + 0.55 * r)],
        skin_dark,
    )
    for side in (-1, 1):
        p.poly(
            [
                (cx + side * 0.42 * hw, shoulder_y - 0.08 * r),
                (cx + side * 0.02 * hw, shoulder_y + 0.58 * r),
                (cx + side * 0.75 * hw, shoulder_y + 0.35 * r),
            ],
            look.accent,
        )
    if look.apron:
        p.rect((cx - 0.95 * hw, shoulder_y + 0.75 * r, cx + 0.95 * hw, bottom + r), look.accent, radius=0.15 * r)
        for side in (-1, 1):
            p.line(
                [(cx + side * 0.85 * hw, shoulder_y + 0.8 * r), (cx + side * 0.5 * hw, shoulder_y)],
                look.accent,
                0.12 * r,
            )
        p.rect(
            (cx - 0.45 * hw, shoulder_y + 1.3 * r, cx + 0.45 * hw, shoulder_y + 1.75 * r),
            shade(look.accent, 0.88),
            radius=0.08 * r,
        )
    if look.scarf:
        p.rect(
            (cx - 0.95 * hw, shoulder_y - 0.2 * r, cx + 0.95 * hw, shoulder_y + 0.3 * r), look.accent, radius=0.25 * r
        )
        p.rect(
            (cx + 0.2 * hw, shoulder_y + 0.1 * r, cx + 0.6 * hw, shoulder_y + 1.1 * r),
            shade(look.accent, 0.9),
            radius=0.1 * r,
        )

    # ears and head
    for side in (-1, 1):
        ex = cx + side * hw
        p.ellipse((ex - 0.17 * r, hy - 0.2 * r, ex + 0.17 * r, hy + 0.28 * r), skin_dark)
    p.ellipse((cx - hw, hy - r, cx + hw, hy + r), look.skin)

    # hair on top of the head
    if look.hair_style == "bun":
        p.circle(cx, hy - 1.08 * r, 0.36 * r, look.hair)
    if look.hair_style == "curly":
        for i in range(11):
            angle = np.pi * (1.0 + i / 10)
            x = cx + 1.0 * hw * np.cos(angle)
            y = hy - 0.2 * r + 0.85 * r * np.sin(angle)
            p.circle(x, y, 0.3 * r, look.hair)
    if look.hair_style != "bald":
        p.chord((cx - 1.07 * hw, hy - 1.12 * r, cx + 1.07 * hw, hy + 0.22 * r), 180, 360, look.hair)
        # a side-swept fringe, towards the way the face turns
        sweep = 1 if f >= 0 else -1
        p.poly(
            [
                (cx - sweep * 0.9 * hw, hy - 0.45 * r),
                (cx + sweep * 0.6 * hw, hy - 0.95 * r),
                (cx + sweep * 0.95 * hw, hy - 0.4 * r),
                (cx + sweep * 0.25 * hw, hy - 0.62 * r),
            ],
            look.hair,
        )
    else:
        for side in (-1, 1):  # a little hair above the ears
            p.ellipse(
                (cx + side * 0.98 * hw - 0.14 * r, hy - 0.45 * r, cx + side * 0.98 * hw + 0.14 * r, hy), look.hair
            )
    if look.hair_style in ("long", "bob"):
        length = 1.95 * r if look.hair_style == "long" else 0.75 * r
        for side in (-1, 1):
            x0, x1 = sorted((cx + side * 1.2 * hw, cx + side * 0.8 * hw))
            p.rect((x0, hy - 0.75 * r, x1, hy + length), look.hair, radius=0.2 * r)
    if look.hair_style == "short":
        for side in (-1, 1):  # sideburns
            x0, x1 = sorted((cx + side * 1.0 * hw, cx + side * 0.86 * hw))
            p.rect((x0, hy - 0.5 * r, x1, hy - 0.05 * r), look.hair, radius=0.05 * r)

    # face: brows, eyes, nose, cheeks, mouth
    eye_y = hy - 0.02 * r
    look_dx = 0.05 * r * f
    for side in (-1, 1):
        ex = cx + side * 0.34 * r + look_dx
        p.line(
            [(ex - 0.16 * r, eye_y - 0.2 * r), (ex + 0.16 * r, eye_y - 0.23 * r - 0.02 * r * side)], hair_dark, 0.06 * r
        )
        p.ellipse((ex - 0.15 * r, eye_y - 0.1 * r, ex + 0.15 * r, eye_y + 0.1 * r), "#fbfaf6")
        ix = ex + 0.04 * r * f
        p.circle(ix, eye_y, 0.085 * r, look.eyes)
        p.circle(ix, eye_y, 0.045 * r, "#15100c")
        p.circle(ix + 0.03 * r, eye_y - 0.03 * r, 0.022 * r, "#ffffff")
        p.arc((ex - 0.16 * r, eye_y - 0.11 * r, ex + 0.16 * r, eye_y + 0.12 * r), 190, 350, "#2a1c14", 0.03 * r)
        p.ellipse((ex - 0.13 * r, eye_y + 0.2 * r, ex + 0.09 * r, eye_y + 0.32 * r), mix(look.skin, "#e07a6e", 0.22))
    nx = cx + 0.08 * r * f
    p.arc((nx - 0.08 * r, hy + 0.12 * r, nx + 0.08 * r, hy + 0.28 * r), 10, 170, shade(look.skin, 0.7), 0.035 * r)
    if look.beard:
        p.chord((cx - 0.98 * hw, hy - 0.3 * r, cx + 0.98 * hw, hy + 1.02 * r), 10, 170, look.hair)
        p.rect((cx - 0.3 * r, hy + 0.33 * r, cx + 0.3 * r, hy + 0.45 * r), look.hair, radius=0.06 * r)
        p.ellipse((cx - 0.22 * r, hy + 0.42 * r, cx + 0.22 * r, hy + 0.62 * r), look.skin)
    mouth_y = hy + 0.5 * r
    p.ellipse((cx - 0.12 * r + look_dx, mouth_y, cx + 0.12 * r + look_dx, mouth_y + 0.09 * r), look.lips)
    p.arc(
        (cx - 0.2 * r + look_dx, mouth_y - 0.12 * r, cx + 0.2 * r + look_dx, mouth_y + 0.04 * r),
        25,
        155,
        shade(look.lips, 0.6),
        0.04 * r,
    )
    if look.glasses:
        frame = "#2b2b33"
        for side in (-1, 1):
            ex = cx + side * 0.34 * r + look_dx
            p.ellipse(
                (ex - 0.22 * r, eye_y - 0.17 * r, ex + 0.22 * r, eye_y + 0.17 * r), None, outline=frame, width=0.045 * r
            )
        p.line(
            [(cx - 0.12 * r + look_dx, eye_y - 0.03 * r), (cx + 0.12 * r + look_dx, eye_y - 0.03 * r)], frame, 0.04 * r
        )

    x0 = cx - half_body - 0.1 * r
    x1 = cx + half_body + 0.1 * r
    y0 = hy - 1.1 * r - (0.45 * r if look.hair_style == "bun" else 0.15 * r if look.hair_style == "curly" else 0)
    return [int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1)), int(np.ceil(min(bottom + r, H)))]


def draw_forearms(p: Painter, look: Look, pose: Pose, table_y: float):
    """Forearms resting on a table top at `table_y`, hands towards the middle."""
    cx, r = pose.cx, pose.r
    sleeve = shade(look.top, 0.82)
    for side in (-1, 1):
        x_out = cx + side * 1.45 * r
        x_in = cx + side * 0.35 * r
        x0, x1 = sorted((x_out, x_in))
        p.rect((x0, table_y - 0.1 * r, x1, table_y + 0.42 * r), sleeve, radius=0.2 * r)
        hand_x = x_in - side * 0.05 * r
        p.ellipse(
            (hand_x - 0.28 * r, table_y - 0.02 * r, hand_x + 0.28 * r, table_y + 0.36 * r), shade(look.skin, 0.95)
        )


# --- the cast of the examples -------------------------------------------------------------------------------

MIA = Look(skin="#f1c9a5", hair="#6b3b22", hair_style="long", top="#2f8f8a", accent="#f2e6c9")
JONAH = Look(skin="#a8704a", hair="#1f1713", hair_style="short", top="#d9a13b", accent="#3b4a6b", beard=True)
PRIYA = Look(
    skin="#c98e63", hair="#17110e", hair_style="bun", top="#5a4a8c", accent="#e9e2f0", glasses=True, eyes="#3a2616"
)
NORA = Look(skin="#f3d2b8", hair="#a4452a", hair_style="bob", top="#3d6e4e", accent="#e8d3a8", eyes="#3f5a3a")
SAM = Look(skin="#e7b990", hair="#3b2a1e", hair_style="curly", top="#2f4f7a", accent="#c9d6e8")
NORA_BAKER = Look(**{**NORA.__dict__, "apron": True, "accent": "#f4efe6"})
SAM_BAKER = Look(**{**SAM.__dict__, "apron": True, "accent": "#f4efe6"})
NORA_COAT = Look(**{**NORA.__dict__, "top": "#8a3b3b", "scarf": True, "accent": "#e0b54a"})
SAM_COAT = Look(**{**SAM.__dict__, "top": "#4a4a52", "scarf": True, "accent": "#4f8fbf"})

LEFT = Pose(cx=245, head_y=205, r=54, facing=1)
RIGHT = Pose(cx=590, head_y=205, r=54, facing=-1)


# --- settings -----------------------------------------------------------------------------------------------


def window(p: Painter, box: Box, sky_top: Colour, sky_bottom: Colour, frame: Colour, panes: tuple[int, int] = (2, 2)):
    x0, y0, x1, y1 = box
    p.gradient(box, sky_top, sky_bottom)
    cols, rows = panes
    for i in range(1, cols):
        x = x0 + (x1 - x0) * i / cols
        p.rect((x - 3, y0, x + 3, y1), frame)
    for j in range(1, rows):
        y = y0 + (y1 - y0) * j / rows
        p.rect((x0, y - 3, x1, y + 3), frame)
    for edge in (
        (x0 - 8, y0 - 8, x1 + 8, y0),
        (x0 - 8, y1, x1 + 8, y1 + 10),
        (x0 - 8, y0, x0, y1),
        (x1, y0, x1 + 8, y1),
    ):
        p.rect(edge, frame)


def skyline(
    p: Painter,
    rnd: random.Random,
    x0: float,
    x1: float,
    base: float,
    colour: Colour,
    lit: Colour | None,
    tallest: float = 120,
):
    """A row of buildings standing on `base`; windows lit in `lit` (or none)."""
    x = x0
    while x < x1:
        w = rnd.randint(34, 70)
        h = rnd.randint(int(tallest * 0.35), int(tallest))
        p.rect((x, base - h, x + w - 2, base), colour)
        if lit is not None:
            for wy in range(int(base - h + 8), int(base - 8), 12):
                for wx in range(int(x + 6), int(x + w - 10), 10):
                    if rnd.random() < 0.45:
                        p.rect((wx, wy, wx + 5, wy + 6), lit)
        x += w


def cloud(p: Painter, cx: float, cy: float, size: float, colour: Colour = "#ffffff"):
    for dx, dy, k in ((-0.9, 0.15, 0.55), (-0.35, -0.2, 0.75), (0.3, -0.1, 0.7), (0.85, 0.2, 0.5), (0, 0.25, 0.6)):
        p.circle(cx + dx * size, cy + dy * size, k * size, colour)


def tree(p: Painter, x: float, base: float, height: float, leaves: Colour, trunk: Colour = "#6b4a30"):
    p.rect((x - height * 0.05, base - height * 0.55, x + height * 0.05, base), trunk)
    for dx, dy, k in ((0, -0.75, 0.3), (-0.2, -0.55, 0.24), (0.2, -0.58, 0.25), (0, -0.5, 0.26)):
        p.circle(x + dx * height, base + dy * height, k * height, leaves)
    p.circle(x - 0.08 * height, base - 0.8 * height, 0.1 * height, shade(leaves, 1.12))


def cup(p: Painter, x: float, y: float, colour: Colour, drink: Colour = "#5a3a24"):
    """A cup with a saucer standing on y (bottom centre at x)."""
    p.ellipse((x - 30, y - 8, x + 30, y + 6), "#f4f1ea")
    p.rect((x - 20, y - 38, x + 20, y - 2), colour, radius=6)
    p.ellipse((x - 20, y - 44, x + 20, y - 32), shade(colour, 0.92))
    p.ellipse((x - 16, y - 42, x + 16, y - 34), drink)
    p.arc((x + 12, y - 32, x + 32, y - 12), 270, 90, colour, 5)


def loaf(p: Painter, x: float, y: float, size: float = 1.0):
    p.ellipse((x - 34 * size, y - 24 * size, x + 34 * size, y + 4 * size), "#c47a35")
    p.ellipse((x - 30 * size, y - 22 * size, x + 30 * size, y - 4 * size), "#d9944a")
    for k in (-1, 0, 1):
        p.line(
            [(x + k * 15 * size - 6 * size, y - 8 * size), (x + k * 15 * size + 6 * size, y - 20 * size)],
            "#f0c68a",
            3 * size,
        )


def draw_cafe(p: Painter) -> dict[str, list[int]]:
    p.gradient((0, 0, W, 330), "#f3e4c8", "#e4c89c")
    p.rect((0, 330, W, H), "#8a5a3c")
    p.rect((0, 326, W, 336), "#6e4630")
    window(p, (305, 60, 530, 290), "#9fd0ef", "#d8eef8", "#6e4630", panes=(2, 2))
    rnd = random.Random(11)
    skyline(p, rnd, 305, 530, 290, "#b9c7d3", None, tallest=110)
    p.rect((40, 80, 175, 215), "#2f3a33", radius=4)  # chalkboard "menu": chalk squiggles, no words
    for i, y in enumerate(range(100, 205, 18)):
        p.line([(56, y), (56 + 70 + (i * 23) % 45, y)], "#e8e4d8", 2.5)
        p.circle(150, y, 3, "#e8e4d8")
    p.rect((650, 110, 800, 118), "#6e4630")  # shelf with jars and cups
    for i, colour in enumerate(("#c0533a", "#e2b84a", "#4f7f9c", "#8aa55a", "#c0533a")):
        x = 662 + i * 28
        p.rect((x, 80, x + 20, 110), colour, radius=4)
        p.rect((x + 3, 75, x + 17, 82), shade(colour, 0.8), radius=2)
    p.rect((650, 190, 800, 198), "#6e4630")
    for i in range(4):
        cup(p, 672 + i * 36, 190, ("#f4f1ea", "#d86f53", "#f4f1ea", "#5c8fb0")[i], drink="#f4f1ea")
    for x in (150, 417, 690):  # pendant lamps
        p.line([(x, 0), (x, 42)], "#3a2a20", 2)
        p.glow(x, 62, 30, "#fff1c4", "#efdcb8")
        p.poly([(x - 22, 62), (x + 22, 62), (x + 12, 40), (x - 12, 40)], "#2f3a33")
        p.circle(x, 64, 6, "#fff7dc")
    p.rect((20, 250, 60, 330), "#b86a45", radius=4)  # plant pot and leaves
    for dx, dy in ((-20, -30), (0, -50), (18, -28), (-8, -15), (14, -45)):
        p.ellipse((40 + dx - 14, 250 + dy - 22, 40 + dx + 14, 250 + dy + 22), "#4f8a4a")

    boxes = {
        "left": draw_person(p, MIA, LEFT, bottom=400),
        "right": draw_person(p, JONAH, RIGHT, bottom=400),
    }
    p.rect((70, 392, 762, H + 20), "#b07a4f", radius=14)  # the table in front of them
    p.rect((70, 392, 762, 402), "#c99464", radius=5)
    draw_forearms(p, MIA, LEFT, 412)
    draw_forearms(p, JONAH, RIGHT, 412)
    cup(p, 360, 452, "#f4f1ea")
    cup(p, 480, 452, "#d86f53")
    p.ellipse((395, 440, 445, 462), "#f4f1ea")  # plate with a croissant
    p.chord((398, 428, 442, 456), 180, 360, "#d9944a")
    return boxes


def draw_park(p: Painter) -> dict[str, list[int]]:
    p.gradient((0, 0, W, 260), "#7fb7e6", "#d3ebf7")
    cloud(p, 140, 60, 34)
    cloud(p, 470, 40, 26)
    cloud(p, 720, 75, 30)
    p.ellipse((-200, 190, 500, 360), "#86b86a")  # far hills
    p.ellipse((300, 200, 1100, 380), "#7aae60")
    p.gradient((0, 260, W, H), "#6fa655", "#4f8a3e")
    p.poly([(380, 260), (450, 260), (620, H), (250, H)], "#d8c7a0")  # gravel path
    for x, h, c in ((60, 230, "#3f7a3a"), (165, 190, "#4a8a40"), (690, 240, "#3f7a3a"), (790, 200, "#4a8a40")):
        tree(p, x, 280, h, c)
    p.rect((408, 120, 414, 300), "#2f3436")  # lamp post
    p.rect((398, 108, 424, 126), "#2f3436", radius=3)
    p.rect((402, 112, 420, 122), "#f7e7a8")
    # bench backrest behind the two of them
    wood, wood_dark = "#9a6a42", "#7a5232"
    for x in (130, 405, 700):
        p.rect((x - 6, 280, x + 6, 440), "#3a3a3a")
    for y in (286, 318, 350):
        p.rect((100, y, 732, y + 22), wood, radius=4)
        p.rect((100, y + 17, 732, y + 22), wood_dark)
    pose_l = Pose(cx=250, head_y=215, r=52, facing=1)
    pose_r = Pose(cx=585, head_y=215, r=52, facing=-1)
    boxes = {"left": draw_person(p, MIA, pose_l, bottom=440), "right": draw_person(p, JONAH, pose_r, bottom=440)}
    # seat plank and armrests in front
    p.rect((90, 432, 742, 456), wood, radius=4)
    p.rect((90, 450, 742, 458), wood_dark)
    for x in (96, 736):
        p.rect((x - 8, 390, x + 8, H), "#3a3a3a", radius=3)
        p.rect((x - 16, 384, x + 16, 396), "#3a3a3a", radius=4)
    p.ellipse((40, 456, 70, 474), "#8c8f96")  # a pigeon
    p.circle(70, 455, 7, "#7b7e86")
    p.poly([(76, 455), (84, 457), (76, 459)], "#d2a24a")
    return boxes


def draw_bus_stop(p: Painter) -> dict[str, list[int]]:
    p.gradient((0, 0, W, 300), "#b8d4ea", "#eef3f6")
    rnd = random.Random(7)
    skyline(p, rnd, -20, W + 20, 330, "#c9b8a6", "#e9e2c8", tallest=260)
    skyline(p, rnd, -40, W + 40, 330, "#a99583", "#f0e6c0", tallest=170)
    p.rect((0, 330, W, H), "#b9b4ac")  # pavement
    for x in range(-40, W, 90):
        p.line([(x, 330), (x + 60, H)], "#a8a39b", 2)
    # shelter: roof, back glass, frame, an advert made of shapes
    glass = mix("#cfe3ee", "#b9b4ac", 0.15)
    p.rect((70, 78, 760, 360), glass)
    for x in (70, 300, 530, 760):
        p.rect((x - 5, 70, x + 5, 400), "#5f6b73")
    p.rect((50, 52, 780, 78), "#4a555c", radius=4)
    p.rect((540, 110, 750, 330), "#f5f1e8")  # the advert panel
    p.circle(690, 180, 42, "#e35d3f")
    p.rect((570, 265, 720, 280), "#2f4f7a", radius=6)
    p.rect((590, 292, 700, 302), "#2f4f7a", radius=4)
    p.rect((100, 300, 280, 312), "#5f6b73", radius=3)  # the shelter bench behind the left person
    p.rect((110, 312, 118, 340), "#5f6b73")
    p.rect((262, 312, 270, 340), "#5f6b73")
    p.rect((790, 90, 798, H), "#444c52")  # the bus stop sign: a plate with a little bus on it
    p.rect((770, 60, 818, 112), "#2e7d5b", radius=6)
    p.rect((777, 72, 811, 96), "#ffffff", radius=5)
    p.rect((781, 76, 807, 84), "#2e7d5b", radius=2)
    p.circle(784, 98, 4, "#ffffff")
    p.circle(804, 98, 4, "#ffffff")
    pose_l = Pose(cx=250, head_y=190, r=50, facing=1)
    pose_r = Pose(cx=585, head_y=195, r=52, facing=-1)
    boxes = {
        "left": draw_person(p, Look(**{**MIA.__dict__, "top": "#c0533a", "scarf": True, "accent": "#f2d06b"}), pose_l),
        "right": draw_person(p, Look(**{**JONAH.__dict__, "top": "#3f5e48", "accent": "#d9a13b"}), pose_r),
    }
    p.rect((0, 462, W, H), "#8e8a84")  # kerb
    return boxes


def draw_office(p: Painter) -> dict[str, list[int]]:
    p.gradient((0, 0, W, H), "#e9e6df", "#d6d1c6")
    window(p, (560, 50, 790, 330), "#8ec2e8", "#e3f1f8", "#f4f3ef", panes=(2, 1))
    skyline(p, random.Random(3), 560, 790, 330, "#9fb1c0", "#dfe8ef", tallest=190)
    p.rect((30, 40, 230, 380), "#7a5538")  # bookshelf
    rnd = random.Random(5)
    for shelf_y in (120, 200, 280, 360):
        p.rect((38, shelf_y, 222, shelf_y + 8), "#5e4029")
        x = 42
        while x < 210:
            w = rnd.randint(9, 16)
            h = rnd.randint(48, 70)
            colour = rnd.choice(("#b5473a", "#3f6f8f", "#d9b44a", "#5a8a5a", "#6d4f8a", "#e0dcd0"))
            p.rect((x, shelf_y - h, x + w, shelf_y), colour)
            x += w + 1
    p.rect((262, 60, 382, 150), "#f4f3ef", outline="#5e4029", width=4)  # a framed abstract print
    p.circle(300, 110, 22, "#e35d3f")
    p.rect((318, 82, 366, 132), "#2f4f7a")
    pose = Pose(cx=416, head_y=205, r=62, facing=0)
    boxes = {"center": draw_person(p, PRIYA, pose, bottom=420)}
    p.rect((0, 408, W, H), "#6f6a64")  # desk
    p.rect((0, 404, W, 414), "#8a847c")
    p.poly([(560, 404), (700, 404), (690, 330), (570, 330)], "#bfc3c7")  # laptop seen from behind
    p.circle(630, 366, 9, "#e8eaec")
    cup(p, 180, 446, "#2f4f7a")
    p.rect((740, 330, 790, 406), "#c7d6c4", radius=6)  # plant
    for dx in (-18, -6, 6, 18):
        p.ellipse((765 + dx - 10, 270 + abs(dx), 765 + dx + 10, 330), "#4f8a4a")
    return boxes


def draw_kitchen(p: Painter) -> dict[str, list[int]]:
    p.rect((0, 0, W, H), "#f3efe6")
    for x in range(0, W, 32):  # tiles
        p.line([(x, 150), (x, 330)], "#dcd6ca", 1.5)
    for y in range(150, 331, 32):
        p.line([(0, y), (W, y)], "#dcd6ca", 1.5)
    p.rect((0, 0, W, 150), "#c98f5d")  # upper cupboards
    for x in range(0, W, 139):
        p.rect((x + 6, 8, x + 133, 142), "#d7a272", radius=6)
        p.rect((x + 60, 120, x + 78, 126), "#6a4a30", radius=2)
    p.rect((340, 150, 495, 330), "#3b3b40", radius=8)  # the bread oven, glowing
    p.rect((358, 200, 477, 300), "#9c3b1e", radius=6)
    p.glow(417, 252, 50, "#ffb347", "#9c3b1e")
    p.rect((358, 168, 477, 184), "#57575e", radius=4)
    p.rect((40, 240, 200, 248), "#8a5a3c")  # shelf of loaves (left) and hanging pans (right)
    for x in (70, 130, 180):
        loaf(p, x, 240, 0.8)
    for x, rr in ((700, 24), (752, 18), (800, 26)):
        p.line([(x, 160), (x, 190)], "#444444", 3)
        p.circle(x, 190 + rr, rr, "#b87333")
        p.circle(x, 190 + rr, rr - 6, "#cf8a4a")
    p.rect((0, 330, W, 400), "#e9e2d3")
    boxes = {
        "left": draw_person(p, NORA_BAKER, LEFT, bottom=410),
        "right": draw_person(p, SAM_BAKER, RIGHT, bottom=410),
    }
    p.rect((0, 400, W, H), "#a8744a")  # the counter
    p.rect((0, 396, W, 408), "#c9966a")
    draw_forearms(p, NORA_BAKER, LEFT, 414)
    draw_forearms(p, SAM_BAKER, RIGHT, 414)
    p.ellipse((370, 420, 470, 470), "#e6e1d6")  # mixing bowl with flour
    p.ellipse((380, 420, 460, 440), "#fbfaf6")
    loaf(p, 120, 460)
    loaf(p, 720, 462, 1.1)
    return boxes


def draw_library(p: Painter) -> dict[str, list[int]]:
    p.rect((0, 0, W, H), "#5e4029")
    rnd = random.Random(21)
    for shelf_y in range(80, 400, 78):  # rows of book spines
        p.rect((0, shelf_y, W, shelf_y + 10), "#3f2a1a")
        x = 4
        while x < W:
            w = rnd.randint(10, 20)
            h = rnd.randint(48, 66)
            colour = rnd.choice(("#8c2f2f", "#2f4f6f", "#4f6f3f", "#b08a3a", "#6a3f6a", "#d8cfb8", "#2a2a2a"))
            if rnd.random() < 0.06:  # a leaning book, or a gap
                x += w
                continue
            p.rect((x, shelf_y - h, x + w, shelf_y), colour)
            p.rect((x + 2, shelf_y - h + 8, x + w - 2, shelf_y - h + 11), mix(colour, "#e8d9a0", 0.6))
            x += w + 1
    for x in (0, 412, 820):  # uprights
        p.rect((x, 0, x + 12, H), "#3f2a1a")
    boxes = {"left": draw_person(p, NORA_COAT, LEFT, bottom=410), "right": draw_person(p, SAM_COAT, RIGHT, bottom=410)}
    p.rect((0, 398, W, H), "#7a4e2c")  # reading table
    p.rect((0, 394, W, 404), "#9a6a42")
    draw_forearms(p, NORA_COAT, LEFT, 412)
    draw_forearms(p, SAM_COAT, RIGHT, 412)
    p.ellipse((330, 400, 504, 440), "#b7875a")  # green reading lamp and its pool of light
    p.rect((412, 340, 422, 398), "#c9a24a")
    p.rect((396, 392, 438, 400), "#c9a24a", radius=3)
    p.chord((375, 318, 459, 368), 180, 360, "#2f6f4f")
    p.rect((380, 438, 460, 468), "#e9e0c8", radius=3)  # an open notebook
    p.line([(420, 438), (420, 468)], "#b8ab8a", 2)
    for y in (446, 454, 462):
        p.line([(388, y), (414, y)], "#8a8070", 1.5)
        p.line([(426, y), (452, y)], "#8a8070", 1.5)
    return boxes


def draw_rooftop(p: Painter) -> dict[str, list[int]]:
    p.gradient((0, 0, W, 340), "#0e1630", "#3b2f5c")
    rnd = random.Random(9)
    for _ in range(90):
        x, y = rnd.uniform(0, W), rnd.uniform(0, 220)
        p.circle(x, y, rnd.choice((0.8, 1.0, 1.4)), "#f4f1d8")
    p.glow(90, 115, 40, "#fff6d8", "#16203f", rings=4)
    p.circle(90, 115, 22, "#fbf6e0")
    skyline(p, rnd, -20, W + 20, 350, "#1c1c33", "#f2c96a", tallest=200)
    p.rect((0, 330, W, H), "#3a3644")  # roof floor
    for y in (300, 340):  # railing behind them
        p.rect((0, y, W, y + 6), "#77798a")
    for x in range(20, W, 60):
        p.rect((x, 300, x + 5, 380), "#77798a")
    # string lights sagging across the top
    points = [(x, 40 + 28 * np.sin(np.pi * x / W)) for x in range(0, W + 1, 8)]
    p.line(points, "#222233", 2)
    for i, (x, y) in enumerate(points[::6]):
        colour = ("#ffd36b", "#ff8f6b", "#9fe3ff", "#b8f58a")[i % 4]
        p.glow(x, y + 6, 9, colour, "#1c2244", rings=3)
        p.circle(x, y + 6, 4, colour)
    boxes = {"left": draw_person(p, NORA_COAT, LEFT), "right": draw_person(p, SAM_COAT, RIGHT)}
    p.rect((20, 420, 80, H), "#7a4e3a", radius=4)  # plant pot, foreground
    for dx in (-16, 0, 16):
        p.ellipse((50 + dx - 12, 370, 50 + dx + 12, 430), "#3f6a3f")
    return boxes


def draw_beach(p: Painter) -> dict[str, list[int]]:
    p.gradient((0, 0, W, 250), "#6b5b9a", "#f6a96b")
    p.glow(416, 250, 90, "#ffe6a0", "#f6a96b", rings=6)
    p.circle(416, 250, 44, "#ffd878")
    p.gradient((0, 250, W, 340), "#e08a6a", "#4f6f9a")  # the sea, with light on it
    rnd = random.Random(13)
    for _ in range(40):
        y = rnd.uniform(256, 330)
        x = 416 + rnd.gauss(0, 40 + (y - 250) * 1.2)
        p.line([(x - 10, y), (x + 10, y)], "#ffd9a0", 2)
    p.poly([(750, 232), (770, 232), (766, 240), (754, 240)], "#2a2a3a")  # a far sailboat
    p.poly([(760, 230), (760, 206), (772, 228)], "#f4efe6")
    for x, y in ((180, 90), (215, 110), (560, 70)):  # gulls
        p.line([(x - 10, y - 4), (x, y), (x + 10, y - 4)], "#3a3046", 2.5)
    p.gradient((0, 336, W, H), "#e9c89a", "#d7ae7a")  # sand
    p.poly([(0, 336), (W, 330), (W, 346), (0, 350)], "#f3e3c4")  # wet edge
    boxes = {"left": draw_person(p, NORA, LEFT), "right": draw_person(p, SAM, RIGHT)}
    return boxes


def draw_market(p: Painter) -> dict[str, list[int]]:
    p.gradient((0, 0, W, 260), "#8cc4ec", "#e2f1f9")
    cloud(p, 610, 60, 28)
    for x, h in ((40, 210), (780, 230)):
        tree(p, x, 300, h, "#4a8a40")
    p.gradient((0, 260, W, H), "#7aae60", "#5b9148")
    # bunting across the top
    for row, (y0, sag) in enumerate(((18, 26), (6, 20))):
        pts = [(x, y0 + sag * np.sin(np.pi * x / W)) for x in range(0, W + 1, 32)]
        p.line(pts, "#555555", 1.5)
        for i, (x, y) in enumerate(pts[:-1]):
            colour = ("#e35d3f", "#f2c14e", "#4f8fbf", "#6fb36f", "#f4efe6")[(i + row * 2) % 5]
            p.poly([(x + 2, y), (x + 28, y + 1), (x + 15, y + 24)], colour)
    # the stall: awning with stripes, posts
    p.rect((60, 100, 72, 420), "#8a5a3c")
    p.rect((760, 100, 772, 420), "#8a5a3c")
    for i, x in enumerate(range(50, 782, 61)):
        p.rect((x, 84, x + 61, 128), "#d8443a" if i % 2 == 0 else "#f7f2e8")
        p.chord((x, 112, x + 61, 142), 0, 180, "#d8443a" if i % 2 == 0 else "#f7f2e8")
    boxes = {
        "left": draw_person(p, NORA_BAKER, LEFT, bottom=410),
        "right": draw_person(p, SAM_BAKER, RIGHT, bottom=410),
    }
    p.rect((40, 398, 792, H), "#f4efe6")  # the stall table, a cloth, and loaves for sale
    p.rect((40, 398, 792, 410), "#e6dcc8")
    for i, x in enumerate(range(60, 800, 28)):
        p.rect((x, 440, x + 14, H), "#d8443a" if i % 2 else "#f4efe6")
    for x in (110, 320, 520, 730):
        loaf(p, x, 432)
    p.rect((390, 416, 446, 436), "#b07a4f", radius=4)  # a little basket
    return boxes


def draw_station(p: Painter) -> dict[str, list[int]]:
    p.gradient((0, 0, W, H), "#d9dde0", "#c5c9cc")
    p.poly([(0, 0), (W, 0), (W, 50), (0, 70)], "#5a6168")  # canopy
    for x in (120, 710):  # columns
        p.rect((x - 10, 50, x + 10, 380), "#5a6168")
    p.rect((0, 150, W, 300), "#2f6f8f")  # a train waiting behind the platform
    for x in range(20, W, 110):
        p.rect((x, 170, x + 80, 230), "#cfe6f1", radius=8)
        p.rect((x + 6, 176, x + 74, 224), "#a9cfe2", radius=6)
    p.rect((0, 250, W, 262), "#f2c14e")
    p.rect((0, 300, W, 380), "#9aa0a6")  # platform
    p.rect((0, 372, W, 384), "#f2d24a")  # the yellow safety line
    p.line([(416, 50), (416, 78)], "#3a3f44", 3)  # clock
    p.circle(416, 100, 24, "#3a3f44")
    p.circle(416, 100, 20, "#f7f7f2")
    p.line([(416, 100), (416, 86)], "#222222", 2.5)
    p.line([(416, 100), (427, 104)], "#222222", 2.5)
    p.rect((0, 380, W, H), "#8d9399")
    boxes = {"left": draw_person(p, NORA_COAT, LEFT), "right": draw_person(p, SAM_COAT, RIGHT)}
    p.rect((740, 380, 800, 460), "#6a3f3a", radius=8)  # a suitcase by Sam's side
    p.rect((758, 368, 782, 384), "#3a2a24", radius=4)
    return boxes


SETTINGS: dict[str, Callable[[Painter], dict[str, list[int]]]] = {
    "cafe": draw_cafe,
    "park_bench": draw_park,
    "bus_stop": draw_bus_stop,
    "office": draw_office,
    "bakery_kitchen": draw_kitchen,
    "library": draw_library,
    "rooftop_night": draw_rooftop,
    "beach_sunset": draw_beach,
    "market_stall": draw_market,
    "station": draw_station,
}


def main() -> None:
    total = 0
    for name, draw in SETTINGS.items():
        painter = Painter()
        boxes = draw(painter)
        path = OUT_DIR / f"{name}.png"
        painter.finish().save(path, optimize=True)
        size = path.stat().st_size
        total += size
        placed = ", ".join(f"{who}: {box}" for who, box in boxes.items())
        print(f"{path.name:20s} {W}x{H} {size / 1024:6.1f} KB   {placed}")
    print(f"total {total / 1024:.1f} KB")


if __name__ == "__main__":
    main()
