"""RGB to planar YUV 4:2:0 (BT.601, limited range) — what H.264 in yuv420p stores.

A renderer that composes frames rarely (and changes little per frame) converts once and hands the encoder YUV,
skipping ffmpeg's per-frame conversion. The integer coefficients are the usual BT.601 studio-swing ones.
"""

from __future__ import annotations

import numpy as np

# Rows: Y, U, V from (R, G, B); studio swing (Y 16..235, chroma centred on 128).
_MATRIX = np.array([[66, 129, 25], [-38, -74, 112], [112, -94, -18]], dtype=np.float32).T / 256
_OFFSET = np.array([16.5, 128.5, 128.5], dtype=np.float32)


def rgb_to_yuv420(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H·3/2, W) uint8 planar Y, U, V (chroma from 2x2 averages); H and W even."""
    height, width = rgb.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"yuv420 needs an even frame size, got {width}x{height}")
    pixels = rgb.astype(np.float32)
    quad = (pixels[0::2, 0::2] + pixels[1::2, 0::2] + pixels[0::2, 1::2] + pixels[1::2, 1::2]) * 0.25
    out = np.empty((height * 3 // 2, width), dtype=np.uint8)
    out[:height] = np.clip(pixels.reshape(-1, 3) @ _MATRIX[:, 0] + _OFFSET[0], 0, 255).reshape(height, width)
    chroma = np.clip(quad.reshape(-1, 3) @ _MATRIX[:, 1:] + _OFFSET[1:], 0, 255)  # (H/2 · W/2, 2)
    flat = out[height:].reshape(-1)
    quarter = height * width // 4
    flat[:quarter] = chroma[:, 0]
    flat[quarter:] = chroma[:, 1]
    return out


def rgb_to_yuv_colour(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """One RGB colour as (Y, U, V), for drawing straight into YUV planes."""
    pixel = np.array(colour, dtype=np.uint8).reshape(1, 1, 3).repeat(2, 0).repeat(2, 1)
    planes = rgb_to_yuv420(pixel)
    return int(planes[0, 0]), int(planes[2, 0]), int(planes[2, 1])


def yuv_planes(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y (H, W), U (H/2, W/2) and V (H/2, W/2) planes of a planar frame."""
    flat = frame.reshape(-1)
    quarter = height * width // 4
    y = flat[: height * width].reshape(height, width)
    u = flat[height * width : height * width + quarter].reshape(height // 2, width // 2)
    v = flat[height * width + quarter :].reshape(height // 2, width // 2)
    return y, u, v
