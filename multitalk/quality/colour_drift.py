"""Colour drift: how far a chunk's colours moved from the reference image, in CIE Lab ΔE.

Long generations drift chunk after chunk (the official pipeline corrects every frame towards the reference, and
still users see faces redden and backgrounds wash out). We compare mean Lab colour per region, the background and
each person, between the reference (fitted to the frame) and the chunk's frames; the score is the largest ΔE76.
A ΔE of about 2.3 is a just-noticeable difference; talking moves a region's mean by 1-3.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from multitalk.model.color import rgb_to_lab
from multitalk.quality.verdict import GateScore

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels, end exclusive
SUBSAMPLE = 4  # every 4th pixel each way and every 4th frame: region means barely change, the cost drops 64x


def _lab(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, H, W, 3) float32 Lab."""
    rgb = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255  # (T, 3, H, W)
    return rgb_to_lab(rgb).permute(0, 2, 3, 1).numpy()


def region_masks(shape: tuple[int, int], regions: Sequence[Box]) -> list[tuple[str, np.ndarray]]:
    """Boolean masks of each person's region and of the background (what no region covers)."""
    height, width = shape
    masks = []
    covered = np.zeros((height, width), dtype=bool)
    for index, (x0, y0, x1, y1) in enumerate(regions):
        mask = np.zeros((height, width), dtype=bool)
        mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
        covered |= mask
        masks.append((f"person {index + 1}", mask))
    masks.insert(0, ("background", ~covered))
    return [(name, mask) for name, mask in masks if mask.any()]


def colour_drift(frames: np.ndarray, reference: np.ndarray, regions: Sequence[Box], threshold: float) -> GateScore:
    """Largest ΔE76 between the mean Lab colour of a region in the chunk and in the reference; at most `threshold`."""
    s = SUBSAMPLE
    regions_small = [(x0 // s, y0 // s, -(-x1 // s), -(-y1 // s)) for x0, y0, x1, y1 in regions]
    chunk_lab = _lab(frames[::s, ::s, ::s])
    reference_lab = _lab(reference[None, ::s, ::s])[0]
    per_region = {}
    for name, mask in region_masks(reference_lab.shape[:2], regions_small):
        ours = chunk_lab[:, mask].reshape(-1, 3).mean(axis=0)
        theirs = reference_lab[mask].mean(axis=0)
        per_region[name] = round(float(np.linalg.norm(ours - theirs)), 3)
    worst = max(per_region.values())
    return GateScore("colour", worst, threshold, higher_is_better=False, detail={"delta_e": per_region})
