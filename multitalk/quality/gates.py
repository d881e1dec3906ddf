"""The gates: every check, its default threshold and direction, run on one chunk.

    verdict = check_chunk(frames, material, speaking, screenplay.defaults.gates.limits())

| gate | score | passes when | default |
|---|---|---|---|
| blank | share of flat frames | at most | 0.05 |
| frozen | share of frames repeating the previous one | at most | 0.5 |
| colour | largest ΔE76 of a region's mean Lab colour vs the reference | at most | 8 |
| binding | worst person's ROC AUC of mouth motion against their own voice | at least | 0.6 |
| identity | largest face-descriptor distance to the reference face (dlib ResNet) | at most | 0.6 |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from multitalk.quality.colour_drift import colour_drift
from multitalk.quality.frame_checks import blank_frames, frozen_frames, luma
from multitalk.quality.identity_drift import identity_drift
from multitalk.quality.material import SceneMaterial
from multitalk.quality.speaker_binding import speaker_binding
from multitalk.quality.verdict import Verdict
from multitalk.screenplay.gates import GateLimit


@dataclass(frozen=True)
class GateSpec:
    default: float
    higher_is_better: bool
    what: str


GATES: dict[str, GateSpec] = {
    "blank": GateSpec(0.05, False, "share of blank frames"),
    "frozen": GateSpec(0.5, False, "share of frozen frames"),
    "colour": GateSpec(8.0, False, "colour drift, ΔE"),
    "binding": GateSpec(0.6, True, "speaker binding, AUC"),
    "identity": GateSpec(0.6, False, "identity drift, descriptor distance"),
}


def thresholds(limits: Mapping[str, GateLimit]) -> dict[str, float]:
    """The enabled gates and their thresholds (the screenplay's, else the defaults), in table order."""
    out = {}
    for name, spec in GATES.items():
        limit = limits.get(name, GateLimit())
        if limit.enabled:
            out[name] = spec.default if limit.threshold is None else float(limit.threshold)
    return out


def check_chunk(
    frames: np.ndarray, material: SceneMaterial, speaking: Sequence[np.ndarray], limits: Mapping[str, GateLimit]
) -> Verdict:
    """Run every enabled gate on a chunk's delivered frames ((T, H, W, 3) uint8 RGB) and voice activity."""
    wanted = thresholds(limits)
    y = luma(frames)
    scores = []
    if "blank" in wanted:
        scores.append(blank_frames(frames, wanted["blank"], y))
    if "frozen" in wanted:
        scores.append(frozen_frames(frames, wanted["frozen"], y))
    if "colour" in wanted:
        scores.append(colour_drift(frames, material.reference, material.regions, wanted["colour"]))
    if "binding" in wanted:
        scores.append(speaker_binding(y, material.faces, speaking, wanted["binding"]))
    if "identity" in wanted:
        scores.append(identity_drift(frames, material.faces, material.identities, wanted["identity"]))
    return Verdict(tuple(scores))
