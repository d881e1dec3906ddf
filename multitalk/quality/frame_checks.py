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


SUBSAMPLE = 2  # every 2nd pixel each way: flatness and stillness show as well, at a quarter of the cost


def luma(frames: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (...) float32 BT.601 luma, in 8-bit fixed point (77, 150, 29)/256: 5x faster than
    float weights, and within one level of them."""
    r, g, b = (frames[..., channel].astype(np.uint16) for channel in range(3))
    return ((r * 77 + g * 150 + b * 29) >> 8).astype(np.float32)


def small_luma(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, H/2, W/2) luma of every 2nd pixel, what `blank_frames` and `frozen_frames` take."""
    return luma(frames[:, ::SUBSAMPLE, ::SUBSAMPLE])


def blank_frames(frames: np.ndarray, threshold: float, y: np.ndarray | None = None) -> GateScore:
    """Share of frames that are flat (one colour: black, grey, white); passes at most `threshold`."""
    y = small_luma(frames) if y is None else y
    stds = y.reshape(len(y), -1).std(axis=1)
    blank = stds < BLANK_STD
    detail = {"frames": len(y), "blank": int(blank.sum()), "min_std": round(float(stds.min()), 3)}
    return GateScore("blank", float(blank.mean()), threshold, higher_is_better=False, detail=detail)


def frozen_frames(frames: np.ndarray, threshold: float, y: np.ndarray | None = None) -> GateScore:
    """Share of frames identical (to within noise) to the frame before; passes at most `threshold`."""
    y = small_luma(frames) if y is None else y
    if len(y) < 2:
        return GateScore("frozen", None, threshold, higher_is_better=False, detail={"reason": "one frame"})
    diffs = np.abs(np.diff(y, axis=0)).reshape(len(y) - 1, -1).mean(axis=1)
    frozen = diffs < FROZEN_DIFF
    detail = {"pairs": len(diffs), "frozen": int(frozen.sum()), "median_diff": round(float(np.median(diffs)), 4)}
    return GateScore("frozen", float(frozen.mean()), threshold, higher_is_better=False, detail=detail)
