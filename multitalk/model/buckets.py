"""Resolution buckets and the cover-resize + centre-crop geometry of MultiTalk.

A reference image is mapped to the bucket whose aspect ratio (h/w) is nearest to its own, resized so that
it covers the bucket (the larger of the two scale factors, sizes rounded up), then centre-cropped. The same
geometry moves the person masks and our preview renderer's frames, so it lives here once.

The tables are the official MultiTalk ones (`ASPECT_RATIO_627`, about 640x640 pixels of area, for 480p;
`ASPECT_RATIO_960`, about 960x960, for 720p). Keys are h/w ratios written with two decimals; values are
(height, width). Every size is a multiple of 16 (VAE stride 8 times patch 2).

References:
- MeiGen-AI/MultiTalk `wan/utils/multitalk_utils.py` (tables), `wan/multitalk.py` (`resize_and_centercrop`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from PIL import Image

# 480p: official ASPECT_RATIO_627, h/w ratio key -> (height, width).
BUCKETS_480P: dict[str, tuple[int, int]] = {
    "0.26": (320, 1216),
    "0.38": (384, 1024),
    "0.50": (448, 896),
    "0.67": (512, 768),
    "0.82": (576, 704),
    "1.00": (640, 640),
    "1.22": (704, 576),
    "1.50": (768, 512),
    "1.86": (832, 448),
    "2.00": (896, 448),
    "2.50": (960, 384),
    "2.83": (1088, 384),
    "3.60": (1152, 320),
    "3.80": (1216, 320),
    "4.00": (1280, 320),
}

# 720p: official ASPECT_RATIO_960, h/w ratio key -> (height, width).
BUCKETS_720P: dict[str, tuple[int, int]] = {
    "0.22": (448, 2048),
    "0.29": (512, 1792),
    "0.36": (576, 1600),
    "0.45": (640, 1408),
    "0.55": (704, 1280),
    "0.63": (768, 1216),
    "0.76": (832, 1088),
    "0.88": (896, 1024),
    "1.00": (960, 960),
    "1.14": (1024, 896),
    "1.31": (1088, 832),
    "1.50": (1152, 768),
    "1.58": (1216, 768),
    "1.82": (1280, 704),
    "1.91": (1344, 704),
    "2.20": (1408, 640),
    "2.30": (1472, 640),
    "2.67": (1536, 576),
    "2.89": (1664, 576),
    "3.62": (1856, 512),
    "3.75": (1920, 512),
}

BUCKETS: dict[str, dict[str, tuple[int, int]]] = {"480p": BUCKETS_480P, "720p": BUCKETS_720P}

BucketTable = Mapping[str, tuple[int, int] | list[int]]


def _table(resolution: str | BucketTable) -> BucketTable:
    if isinstance(resolution, str):
        if resolution not in BUCKETS:
            raise ValueError(f"unknown resolution {resolution!r} (known: {', '.join(BUCKETS)})")
        return BUCKETS[resolution]
    if not resolution:
        raise ValueError("bucket table is empty")
    return resolution


def bucket_key(h: int, w: int, resolution: str | BucketTable = "480p") -> str:
    """The table key (h/w ratio) closest to h/w; ties go to the earlier key, as in the official sort."""
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {h}x{w} (h x w)")
    ratio = h / w
    return min(_table(resolution), key=lambda key: abs(float(key) - ratio))


def choose_bucket(h: int, w: int, resolution: str | BucketTable = "480p") -> tuple[int, int]:
    """(target_h, target_w) of the bucket nearest in aspect ratio to an h x w image.

    `resolution` is "480p", "720p" or a table mapping ratio keys to (height, width).
    """
    table = _table(resolution)
    target_h, target_w = table[bucket_key(h, w, table)]
    return int(target_h), int(target_w)


def cover_crop_geometry(src_hw: tuple[int, int], target_hw: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Resize-to-cover then centre-crop: returns ((resized_h, resized_w), (crop_top, crop_left)).

    scale = max(th/h, tw/w) as a Python float, resized = ceil(scale*size), crop offset = round((resized -
    target)/2) with Python rounding (halves to even), as torchvision's `center_crop` does.
    """
    (h, w), (th, tw) = src_hw, target_hw
    if min(h, w, th, tw) <= 0:
        raise ValueError(f"sizes must be positive, got source {src_hw} and target {target_hw}")
    scale = max(th / h, tw / w)
    resized_h, resized_w = math.ceil(scale * h), math.ceil(scale * w)
    crop_top = round((resized_h - th) / 2.0)
    crop_left = round((resized_w - tw) / 2.0)
    return (resized_h, resized_w), (crop_top, crop_left)


def center_crop(x: torch.Tensor, target_hw: tuple[int, int]) -> torch.Tensor:
    """Crop the last two dims of `x` around the centre (offsets as in `cover_crop_geometry`)."""
    h, w = x.shape[-2:]
    th, tw = target_hw
    if th > h or tw > w:
        raise ValueError(f"cannot crop {h}x{w} to a larger {th}x{tw}")
    top = round((h - th) / 2.0)
    left = round((w - tw) / 2.0)
    return x[..., top : top + th, left : left + tw]


def resize_cover_crop_nearest(x: torch.Tensor, target_hw: tuple[int, int]) -> torch.Tensor:
    """Cover-resize (PyTorch "nearest") and centre-crop a (C, H, W) tensor; used for person masks."""
    (resized_h, resized_w), _ = cover_crop_geometry(tuple(x.shape[-2:]), target_hw)
    resized = torch.nn.functional.interpolate(x[None].float(), size=(resized_h, resized_w), mode="nearest")[0]
    return center_crop(resized, target_hw).to(x.dtype)


def fit_image_to_bucket(image: Image.Image | torch.Tensor, target_hw: tuple[int, int]) -> torch.Tensor:
    """Reference image -> (3, target_h, target_w) float32 in [-1, 1], the official way.

    The official pipeline resizes the RGB PIL image with PIL bilinear (which antialiases when shrinking) to
    cover the bucket, centre-crops, then maps uint8 to [-1, 1]. A tensor input must be uint8 (3, H, W) or
    (H, W, 3); it goes through PIL so both inputs give identical pixels.
    """
    if isinstance(image, torch.Tensor):
        image = _tensor_to_pil(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image or a uint8 tensor, got {type(image).__name__}")
    image = image.convert("RGB")
    (resized_h, resized_w), _ = cover_crop_geometry((image.height, image.width), target_hw)
    resized = image.resize((resized_w, resized_h), resample=Image.BILINEAR)
    pixels = torch.from_numpy(np.array(resized)).permute(2, 0, 1)  # (3, H, W) uint8
    cropped = center_crop(pixels, target_hw).float()  # (3, th, tw)
    return (cropped / 255 - 0.5) * 2


def _tensor_to_pil(image: torch.Tensor) -> Image.Image:
    if image.dtype != torch.uint8 or image.dim() != 3:
        raise ValueError(f"image tensor must be uint8 (3, H, W) or (H, W, 3), got {image.dtype} {tuple(image.shape)}")
    if image.shape[0] == 3 and image.shape[-1] != 3:
        image = image.permute(1, 2, 0)
    if image.shape[-1] != 3:
        raise ValueError(f"image tensor must have 3 colour channels, got shape {tuple(image.shape)}")
    return Image.fromarray(image.cpu().contiguous().numpy())
