"""Person masks for MultiTalk's L-RoPE: where each speaker is in the reference image.

Our cast placement gives each person `"left"`, `"right"` or a box `[x0, y0, x1, y1]` in source-image
pixels (x horizontal, end exclusive); a lone person may have no placement (None). The official code
takes boxes as rows-first `[top, left, bottom, right]`; we convert internally and never expose that order.

Masks are built as 3 channels (person 1, person 2, background):
- one person: three all-ones masks (the model then takes its plain audio path and ignores them);
- two persons: a box sets rows y0:y1 and columns x0:x1 (after `int()`); `"left"` / `"right"` is the
  official no-box layout: rows int(h*m) to int(h*(1-m)) and, with w2 = w // 2, columns int(w2*m) to
  int(w2*(1-m)) for the left half or the same shifted by w2 for the right half, m = 5 %. The background is 1
  where no person is.

Then they follow the reference image: cover-resize with PyTorch "nearest" and centre-crop to the bucket,
nearest-resize to the latent grid (/8, what the DiT receives), and the DiT itself resizes to the token grid
(/16). An empty mask would make the official model divide 0 by 0 and render black frames, so we raise.

References:
- MeiGen-AI/MultiTalk `wan/multitalk.py` (`generate`: human mask construction, `resize_and_centercrop`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from multitalk.model.buckets import resize_cover_crop_nearest

logger = logging.getLogger(__name__)

Placement = str | Sequence[float] | None

FACE_MARGIN = 0.05  # official `face_scale`: margin of the no-box halves, as a fraction of the side
CHANNEL_NAMES = ("person 1", "person 2", "background")


def _who(index: int, names: Sequence[str] | None) -> str:
    label = f"person {index + 1}"
    return f"{label} ({names[index]!r})" if names is not None and index < len(names) else label


def _box_rows_first(box: Sequence[float], image_hw: tuple[int, int], who: str) -> tuple[int, int, int, int]:
    """Our [x0, y0, x1, y1] -> official [top, left, bottom, right] after `int()`, checked against the image."""
    h, w = image_hw
    if len(box) != 4:
        raise ValueError(f"{who}: a box is [x0, y0, x1, y1], got {list(box)}")
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(
            f"{who}: box [x0, y0, x1, y1] = {list(box)} is empty or outside the {w}x{h} (w x h) image; "
            f"it needs 0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h}"
        )
    return y0, x0, y1, x1


def _half_rows_first(side: str, image_hw: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """The official no-box region of the left or right half, as [top, left, bottom, right]."""
    h, w = image_hw
    half = w // 2
    top, bottom = int(h * margin), int(h * (1 - margin))
    offset = 0 if side == "left" else half
    return top, int(half * margin + offset), bottom, int(half * (1 - margin) + offset)


def source_person_masks(
    image_hw: tuple[int, int],
    placements: Sequence[Placement],
    *,
    names: Sequence[str] | None = None,
    margin: float = FACE_MARGIN,
) -> torch.Tensor:
    """(3, h, w) float32 masks (person 1, person 2, background) in source-image pixels.

    Args:
        image_hw: source image (height, width).
        placements: one entry per person: "left", "right", a box [x0, y0, x1, y1] in pixels, or None
            (a lone person only).
        names: optional character names, used only in error messages.
        margin: margin of the "left"/"right" halves (official 5 %).
    """
    h, w = image_hw
    if len(placements) not in (1, 2):
        raise ValueError(f"MultiTalk supports 1 or 2 persons per shot, got {len(placements)} placements")
    regions = []
    for i, placement in enumerate(placements):
        who = _who(i, names)
        if placement is None:
            if len(placements) == 2:
                raise ValueError(f"{who}: two persons need a placement each ('left', 'right' or a box)")
            continue
        if isinstance(placement, str):
            if placement not in ("left", "right"):
                raise ValueError(f"{who}: placement must be 'left', 'right' or a box, got {placement!r}")
            regions.append(_half_rows_first(placement, image_hw, margin))
        else:
            regions.append(_box_rows_first(placement, image_hw, who))
    if len(placements) == 1:
        return torch.ones(3, h, w)
    sides = [p for p in placements if isinstance(p, str)]
    if len(sides) == 2 and sides[0] == sides[1]:
        raise ValueError(f"{_who(0, names)} and {_who(1, names)} are both placed {sides[0]!r}; use one of each")
    masks = torch.zeros(3, h, w)
    for i, (top, left, bottom, right) in enumerate(regions):
        masks[i, top:bottom, left:right] = 1
    masks[2] = (masks[:2].sum(0) == 0).float()
    return masks


def resize_masks_nearest(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(3, H, W) -> (3, h, w) by PyTorch "nearest" resize, then > 0, as float32."""
    resized = F.interpolate(masks[None].float(), size=size, mode="nearest")[0]
    return (resized > 0).float()


@dataclass(frozen=True)
class PersonMasks:
    """The person masks at every stage; channels are person 1, person 2, background, values 0/1 float32."""

    source: torch.Tensor  # (3, src_h, src_w) source-image pixels
    bucket: torch.Tensor  # (3, target_h, target_w) after cover-resize + centre crop
    latent: torch.Tensor  # (3, target_h/8, target_w/8) what the DiT takes as `ref_target_masks`
    token: torch.Tensor  # (3, target_h/16, target_w/16) what the DiT uses internally


def build_person_masks(
    image_hw: tuple[int, int],
    placements: Sequence[Placement],
    target_hw: tuple[int, int],
    *,
    names: Sequence[str] | None = None,
    vae_stride: int = 8,
    patch: int = 2,
    margin: float = FACE_MARGIN,
) -> PersonMasks:
    """Person masks for a reference image of `image_hw` going to the bucket `target_hw`.

    Raises ValueError when, for two persons, any mask (a person or the background) is empty on the token
    grid: the model would divide 0 by 0 there.
    """
    source = source_person_masks(image_hw, placements, names=names, margin=margin)
    bucket = resize_cover_crop_nearest(source, target_hw)
    latent_hw = (target_hw[0] // vae_stride, target_hw[1] // vae_stride)
    latent = resize_masks_nearest(bucket, latent_hw)
    token = resize_masks_nearest(latent, (latent_hw[0] // patch, latent_hw[1] // patch))
    if len(placements) == 2:
        for channel in range(3):
            if token[channel].sum() == 0:
                what = _who(channel, names) if channel < 2 else "the background"
                raise ValueError(
                    f"the mask of {what} is empty on the {tuple(token.shape[1:])} token grid "
                    f"(placements {list(placements)} on a {image_hw[1]}x{image_hw[0]} image, bucket "
                    f"{target_hw[1]}x{target_hw[0]}); make the box larger"
                    + (" or leave some background" if channel == 2 else "")
                )
    logger.debug("person masks: token sums %s", token.sum(dim=(1, 2)).tolist())
    return PersonMasks(source=source, bucket=bucket, latent=latent, token=token)
