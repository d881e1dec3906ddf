"""The gates run on one chunk: `check_chunk(frames, material, speaking, screenplay.defaults.gates.limits())`.

The gates, their defaults and directions are tabled in `policy.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from multitalk.quality.colour_drift import colour_drift
from multitalk.quality.frame_checks import blank_frames, frozen_frames, small_luma
from multitalk.quality.identity_drift import identity_drift
from multitalk.quality.material import SceneMaterial
from multitalk.quality.policy import thresholds
from multitalk.quality.speaker_binding import speaker_binding
from multitalk.quality.verdict import Verdict
from multitalk.screenplay.gates import GateLimit


def check_chunk(
    frames: np.ndarray, material: SceneMaterial, speaking: Sequence[np.ndarray], limits: Mapping[str, GateLimit]
) -> Verdict:
    """Run every enabled gate on a chunk's delivered frames ((T, H, W, 3) uint8 RGB) and voice activity."""
    wanted = thresholds(limits)
    y = small_luma(frames)  # shared by blank and frozen
    scores = []
    if "blank" in wanted:
        scores.append(blank_frames(frames, wanted["blank"], y))
    if "frozen" in wanted:
        scores.append(frozen_frames(frames, wanted["frozen"], y))
    if "colour" in wanted:
        scores.append(colour_drift(frames, material.reference, material.regions, wanted["colour"]))
    if "binding" in wanted:
        scores.append(speaker_binding(frames, material.faces, speaking, wanted["binding"]))
    if "identity" in wanted:
        scores.append(identity_drift(frames, material.faces, material.identities, wanted["identity"]))
    return Verdict(tuple(scores))
