"""A picture of a scene's cast: the faces found, each speaker's region, and the masks the model will get.

Left: the scene image with every detected face (thin white) and each on-screen speaker's region (their colour,
named). Right: the image as the model sees it (cover-cropped to the resolution's bucket) under the person masks
on the latent grid (1/8 of the frame, what the DiT receives), one tint per speaker, background untinted, with the
token grid (1/16, where the DiT binds voices to people) drawn faintly. What `multitalk cast FILE` writes, one PNG
per scene, so an author sees a bad box before a render.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from multitalk.model.buckets import choose_bucket, fit_image_to_bucket
from multitalk.model.masks import FACE_MARGIN, build_person_masks
from multitalk.store.store import write_bytes_atomic
from multitalk.vision.faces import Face

PANEL_HEIGHT = 480
PALETTE = ((47, 143, 138), (217, 161, 59))  # person 1, person 2 (the preview's defaults)


def _hex(colour: str | None, index: int) -> tuple[int, int, int]:
    if colour:
        return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
    return PALETTE[index % len(PALETTE)]


def draw_cast(
    image_path: Path,
    names: Sequence[str],
    placements: Sequence[str | Sequence[float] | None],
    faces: Sequence[Face],
    resolution: str,
    out: Path,
    colours: Sequence[str | None] = (),
) -> Path:
    """Write the cast picture of one scene to `out` (PNG, atomically); returns `out`."""
    with Image.open(image_path) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    scale = PANEL_HEIGHT / height
    left = image.resize((max(1, round(width * scale)), PANEL_HEIGHT), Image.BILINEAR)
    draw = ImageDraw.Draw(left)
    font = ImageFont.load_default()
    for face in faces:
        draw.rectangle([v * scale for v in face.box], outline=(255, 255, 255), width=1)
        draw.text((face.box[0] * scale + 2, face.box[3] * scale + 2), f"{face.score:.2f}", fill=(255, 255, 255))
    tints = [_hex(colours[i] if i < len(colours) else None, i) for i in range(len(names))]
    for index, (name, placement) in enumerate(zip(names, placements, strict=True)):
        if placement is None:
            continue
        if isinstance(placement, str):  # the official no-box half: 5 % margins (multitalk/model/masks.py)
            half = width // 2
            offset = 0 if placement == "left" else half
            placement = (
                offset + half * FACE_MARGIN,
                height * FACE_MARGIN,
                offset + half * (1 - FACE_MARGIN),
                height * (1 - FACE_MARGIN),
            )
        box = [v * scale for v in placement]
        draw.rectangle(box, outline=tints[index], width=3)
        draw.text((box[0] + 4, box[1] + 4), name, fill=tints[index], font=font)

    target_h, target_w = choose_bucket(height, width, resolution)
    bucket = ((fit_image_to_bucket(image, (target_h, target_w)) + 1) * 127.5).clamp(0, 255).byte()
    right = bucket.permute(1, 2, 0).numpy().astype(np.float32)  # (th, tw, 3)
    latent_hw = (target_h // 8, target_w // 8)
    if len(placements) in (1, 2):
        masks = build_person_masks((height, width), list(placements), (target_h, target_w), names=list(names))
        latent = masks.latent.numpy()  # (3, th/8, tw/8)
        for index in range(min(len(placements), 2)):
            if len(placements) == 1:
                continue  # a lone person: all-ones masks, the model ignores them
            cells = np.kron(latent[index], np.ones((8, 8), dtype=np.float32))[:target_h, :target_w, None]
            right = right * (1 - 0.45 * cells) + np.asarray(tints[index], dtype=np.float32) * 0.45 * cells
    grid = np.zeros((target_h, target_w), dtype=bool)  # the token grid (16 px: 2x2 latent cells), drawn faintly
    grid[::16, :] = True
    grid[:, ::16] = True
    right[grid] = right[grid] * 0.6
    panel = Image.fromarray(right.clip(0, 255).astype(np.uint8))
    label = f"latent {latent_hw[1]}x{latent_hw[0]}, token grid lines ({resolution} bucket {target_w}x{target_h})"
    ImageDraw.Draw(panel).rectangle([0, 0, 6 * len(label) + 8, 14], fill=(0, 0, 0))
    ImageDraw.Draw(panel).text((4, 2), label, fill=(255, 255, 255), font=font)
    panel = panel.resize((round(target_w * PANEL_HEIGHT / target_h), PANEL_HEIGHT), Image.NEAREST)

    sheet = Image.new("RGB", (left.width + panel.width + 8, PANEL_HEIGHT), (32, 32, 32))
    sheet.paste(left, (0, 0))
    sheet.paste(panel, (left.width + 8, 0))
    encoded = io.BytesIO()
    sheet.save(encoded, format="PNG")
    write_bytes_atomic(out, encoded.getvalue())
    return out
