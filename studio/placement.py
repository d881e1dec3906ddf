"""Where each character stands in a scene, and the person masks the model will receive, as the page shows them.

A side placement (`left`, `right`, `center`) is drawn as the region the model really uses for it (the official
no-box halves with their 5 % margin, or the whole image), so a box dragged from it starts where the side was. The
mask overlay is the latent grid (image -> bucket by cover-resize and centre crop -> /8) mapped back onto the source
image: each cell tinted with the colour of the person it belongs to, the background left clear and the parts the
crop throws away shaded. A box too small for the token grid, or two boxes leaving no background, is reported in
the words `build_person_masks` uses before a render would turn it into black frames.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image, ImageDraw

from multitalk.model.buckets import choose_bucket, cover_crop_geometry
from multitalk.model.masks import build_person_masks, source_person_masks
from multitalk.renderers.preview import PALETTE
from multitalk.screenplay.schema import Placement, Scene, Screenplay

VAE_STRIDE = 8
CROPPED_SHADE = (20, 20, 20, 150)
CELL_ALPHA = 110


@dataclass(frozen=True)
class PlacedCharacter:
    """One cast member as drawn on the page."""

    name: str
    display_name: str
    color: str
    placement: str  # "left" | "right" | "center" | "bbox"
    box: tuple[int, int, int, int]  # [x0, y0, x1, y1] in image pixels, the region the model uses
    person: int | None  # 1 or 2 for an on-screen speaker (the model's person index), None if silent


def character_colour(screenplay: Screenplay, name: str) -> str:
    """The character's `color`, else the preview renderer's palette by order of the characters."""
    character = screenplay.characters.get(name)
    if character is not None and character.color:
        return character.color
    names = list(screenplay.characters)
    return PALETTE[(names.index(name) if name in names else 0) % len(PALETTE)]


def _mask_placement(placement: Placement) -> str | list[float] | None:
    if placement.bbox is not None:
        return list(placement.bbox)
    return None if placement.side == "center" else placement.side


def _bounds(mask: torch.Tensor) -> tuple[int, int, int, int]:
    rows = torch.nonzero(mask.any(dim=1)).flatten()
    cols = torch.nonzero(mask.any(dim=0)).flatten()
    if len(rows) == 0:
        return 0, 0, 0, 0
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def place_cast(screenplay: Screenplay, scene: Scene, image_hw: tuple[int, int]) -> list[PlacedCharacter]:
    """Every cast member of `scene` with the region the model uses for them."""
    h, w = image_hw
    speakers = scene.on_screen_speakers()
    placed = []
    for name, placement in scene.cast.items():
        if placement.bbox is not None:
            x0, y0, x1, y1 = (int(v) for v in placement.bbox)
            kind = "bbox"
        elif placement.side in ("left", "right"):
            x0, y0, x1, y1 = _bounds(source_person_masks(image_hw, [placement.side, _other(placement.side)])[0])
            kind = placement.side
        else:
            x0, y0, x1, y1, kind = 0, 0, w, h, "center"
        placed.append(
            PlacedCharacter(
                name=name,
                display_name=screenplay.display_name(name),
                color=character_colour(screenplay, name),
                placement=kind,
                box=(x0, y0, x1, y1),
                person=speakers.index(name) + 1 if name in speakers else None,
            )
        )
    return placed


def _other(side: str) -> str:
    return "right" if side == "left" else "left"


@dataclass(frozen=True)
class MaskGrid:
    """The latent-grid person masks of a scene, and where that grid lies on the source image."""

    latent: torch.Tensor | None  # (3, h/8, w/8): person 1, person 2, background; None when the masks fail
    bucket_hw: tuple[int, int]
    scale: float  # source pixels -> resized pixels
    crop_top_left: tuple[int, int]  # in resized pixels
    problem: str | None  # why the model would fail on these placements, in build_person_masks' words


def mask_grid(screenplay: Screenplay, scene: Scene, image_hw: tuple[int, int]) -> MaskGrid:
    h, w = image_hw
    bucket = choose_bucket(h, w, screenplay.defaults.resolution)
    (resized_h, _), crop = cover_crop_geometry(image_hw, bucket)
    speakers = scene.on_screen_speakers() or list(scene.cast)[:1]
    placements = [_mask_placement(scene.cast[name]) for name in speakers] if speakers else [None]
    try:
        masks = build_person_masks(image_hw, placements, bucket, names=speakers or None)
        latent, problem = masks.latent, None
    except ValueError as error:
        latent, problem = None, str(error)
    return MaskGrid(latent=latent, bucket_hw=bucket, scale=resized_h / h, crop_top_left=crop, problem=problem)


def _rgba(colour: str, alpha: int) -> tuple[int, int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16), alpha


def mask_overlay_png(screenplay: Screenplay, scene: Scene, image_hw: tuple[int, int]) -> tuple[bytes, MaskGrid]:
    """A transparent PNG the size of the scene image: the latent-grid masks in each person's colour."""
    h, w = image_hw
    grid = mask_grid(screenplay, scene, image_hw)
    overlay = Image.new("RGBA", (w, h), CROPPED_SHADE)
    draw = ImageDraw.Draw(overlay)
    top, left = grid.crop_top_left
    bucket_h, bucket_w = grid.bucket_hw
    cell = VAE_STRIDE / grid.scale  # one latent cell in source pixels

    def to_source(y: float, x: float) -> tuple[float, float]:
        return (x + left) / grid.scale, (y + top) / grid.scale

    x0, y0 = to_source(0, 0)
    x1, y1 = to_source(bucket_h, bucket_w)
    draw.rectangle([x0, y0, x1, y1], fill=(0, 0, 0, 0))  # the part of the image the model sees
    speakers = scene.on_screen_speakers()
    if grid.latent is not None and len(speakers) == 2:
        colours = [_rgba(character_colour(screenplay, name), CELL_ALPHA) for name in speakers]
        rows, cols = grid.latent.shape[1:]
        for row in range(rows):
            for col in range(cols):
                for person in range(2):
                    if grid.latent[person, row, col] > 0:
                        cx, cy = to_source(row * VAE_STRIDE, col * VAE_STRIDE)
                        draw.rectangle([cx, cy, cx + cell - 1, cy + cell - 1], fill=colours[person])
        for col in range(cols + 1):  # the grid lines, faint
            gx, _ = to_source(0, col * VAE_STRIDE)
            draw.line([gx, y0, gx, y1], fill=(255, 255, 255, 40))
        for row in range(rows + 1):
            _, gy = to_source(row * VAE_STRIDE, 0)
            draw.line([x0, gy, x1, gy], fill=(255, 255, 255, 40))
    buffer = io.BytesIO()
    overlay.save(buffer, format="PNG")
    return buffer.getvalue(), grid


def scene_picture(screenplay: Screenplay, scene: Scene) -> dict[str, Any]:
    """What the cast panel draws for one scene (image size, boxes, the masks' verdict)."""
    with Image.open(scene.image_path) as image:
        w, h = image.size
    grid = mask_grid(screenplay, scene, (h, w))
    return {
        "scene": scene.id,
        "width": w,
        "height": h,
        "bucket": {"width": grid.bucket_hw[1], "height": grid.bucket_hw[0]},
        "latent": None if grid.latent is None else {"rows": grid.latent.shape[1], "cols": grid.latent.shape[2]},
        "mask_problem": grid.problem,
        "cast": [
            {
                "name": c.name,
                "display_name": c.display_name,
                "color": c.color,
                "placement": c.placement,
                "box": list(c.box),
                "person": c.person,
            }
            for c in place_cast(screenplay, scene, (h, w))
        ],
        "characters": [
            {"name": name, "display_name": screenplay.display_name(name), "color": character_colour(screenplay, name)}
            for name in screenplay.characters
        ],
    }
