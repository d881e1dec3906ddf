"""Which gates run, how strictly, and what they add to a chunk's key: the light part of the gates (no torch).

Planning a render computes every chunk key before any work, and must stay cheap; this module is all that needs.

| gate | score | passes when | default |
|---|---|---|---|
| blank | share of flat frames | at most | 0.05 |
| frozen | share of frames repeating the previous one | at most | 0.5 |
| colour | largest ΔE76 of a region's mean Lab colour vs the reference | at most | 8 |
| binding | worst person's ROC AUC of mouth motion against their own voice | at least | 0.6 |
| identity | largest face-descriptor distance to the reference face (dlib ResNet) | at most | 0.6 |
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from multitalk.renderers.base import Renderer, SceneContext
from multitalk.screenplay.gates import GateLimit, Gates
from multitalk.store.keys import content_key

logger = logging.getLogger(__name__)

ATTEMPT_VERSION = "attempt-1"  # key material version of attempt keys (they live in the chunk stage folder)
UNGATED_RENDERERS = frozenset({"preview"})  # an animatic has no lips to bind and overlays no model would draw


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


def gated(renderer: Renderer, context: SceneContext) -> Gates | None:
    """The gate settings that apply to this renderer's chunks, or None when no gate runs."""
    gates = context.gates
    if gates is None or gates.mode == "off" or renderer.name in UNGATED_RENDERERS:
        return None
    if renderer.pixel_format != "rgb24":
        logger.warning("gates need rgb24 frames; renderer %r gives %s: skipped", renderer.name, renderer.pixel_format)
        return None
    return gates


def key_material(renderer: Renderer, context: SceneContext) -> dict[str, Any] | None:
    """What the gates add to a chunk key: only in `reroll` mode (the others never change the frames kept)."""
    gates = gated(renderer, context)
    if gates is None or gates.mode != "reroll":
        return None
    return {"attempts": gates.attempts, "thresholds": thresholds(gates.limits())}


def attempt_seed(seed: int, chunk_index: int, attempt: int) -> int:
    """The seed of attempt `attempt` at a chunk: the scene seed first, then ones derived from (seed, chunk, n)."""
    if attempt == 0:
        return seed
    digest = hashlib.sha256(f"multitalk-reroll:{seed}:{chunk_index}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def attempt_key(stage: str, slot_key: str, attempt: int, seed: int) -> str:
    """The store key of one attempt at a chunk slot."""
    return content_key(stage, ATTEMPT_VERSION, {"slot": slot_key, "attempt": attempt, "seed": seed})


def attempt_keys(context: SceneContext, chunk_index: int, slot_key: str, stage: str = "chunk") -> list[str]:
    """Every attempt key a re-rolling chunk slot may have (none unless the scene's gates re-roll)."""
    gates = context.gates
    if gates is None or gates.mode != "reroll":
        return []
    return [
        attempt_key(stage, slot_key, attempt, attempt_seed(context.seed, chunk_index, attempt))
        for attempt in range(gates.attempts + 1)
    ]
