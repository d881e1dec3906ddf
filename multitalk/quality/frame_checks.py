"""Blank and frozen frames: the cheapest failures to see, and the ones a bad box or a NaN produces.

An empty person mask makes the official model divide 0 by 0 and decode black frames; a stalled sampler or a
broken carry repeats one picture. Both show in the luma plane alone: a blank frame has almost no spatial
variation, a frozen frame almost no difference from the one before it.
"""

from __future__ import annotations

import numpy as np

from multitalk.quality.verdict import GateScore

BLANK_STD = 2.0  # luma levels (0-255): a flat frame; a real scene varies by tens of levels
FROZEN_DIFF = 0.15  # mean |Δluma| per pixel between neighbours: below it the picture did not change at all


def luma(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, H, W) float32 BT.601 luma."""
    rgb = frames.astype(np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def blank_frames(frames: np.ndarray, threshold: float, y: np.ndarray | None = None) -> GateScore:
    """Share of frames that are flat (one colour: black, grey, white); passes at most `threshold`."""
    y = luma(frames) if y is None else y
    stds = y.reshape(len(y), -1).std(axis=1)
    blank = stds < BLANK_STD
    detail = {"frames": len(y), "blank": int(blank.sum()), "min_std": round(float(stds.min()), 3)}
    return GateScore("blank", float(blank.mean()), threshold, higher_is_better=False, detail=detail)


def frozen_frames(frames: np.ndarray, threshold: float, y: np.ndarray | None = None) -> GateScore:
    """Share of frames identical (to within noise) to the frame before; passes at most `threshold`."""
    y = luma(frames) if y is None else y
    if len(y) < 2:
        return GateScore("frozen", None, threshold, higher_is_better=False, detail={"reason": "one frame"})
    diffs = np.abs(np.diff(y, axis=0)).reshape(len(y) - 1, -1).mean(axis=1)
    frozen = diffs < FROZEN_DIFF
    detail = {"pairs": len(diffs), "frozen": int(frozen.sum()), "median_diff": round(float(np.median(diffs)), 4)}
    return GateScore("frozen", float(frozen.mean()), threshold, higher_is_better=False, detail=detail)
