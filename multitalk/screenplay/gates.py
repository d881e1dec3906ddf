"""Screenplay settings of the per-chunk quality gates (`defaults.gates`).

    defaults:
      gates:
        mode: reroll        # off | warn (score and report) | reroll (render a failing chunk again, keep the best)
        attempts: 2         # re-renders of a failing chunk, each with the next derived seed
        colour: {threshold: 8}
        identity: {enabled: false}

Each gate is a named check with a score and a threshold; `multitalk/quality/` defines them, their default
thresholds and which way each score points. Only `reroll` changes what a render produces, so only then do these
settings enter the chunk keys.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

GateMode = Literal["off", "warn", "reroll"]


class _Strict(BaseModel):
    """Unknown keys are errors, models are immutable (as `schema.Strict`, which imports this file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class GateLimit(_Strict):
    """One gate: whether it runs, and its threshold (None: the gate's default, see `multitalk.quality.GATES`)."""

    enabled: bool = True
    threshold: float | None = None


class Gates(_Strict):
    """Which checks judge each rendered chunk, how strictly, and what a failure does."""

    mode: GateMode = "warn"
    attempts: Annotated[int, Field(ge=0, le=8)] = 2  # re-renders of a failing chunk in `reroll` mode
    blank: GateLimit = GateLimit()  # share of blank (flat) frames, at most
    frozen: GateLimit = GateLimit()  # share of frames that repeat the previous one, at most
    colour: GateLimit = GateLimit()  # ΔE (CIE Lab) of background and person regions against the reference, at most
    binding: GateLimit = GateLimit()  # mouth motion follows the person's own voice (ROC AUC), at least
    identity: GateLimit = GateLimit()  # face descriptor distance to the reference face, at most

    def limits(self) -> dict[str, GateLimit]:
        """Every gate's limit by gate name."""
        return {name: getattr(self, name) for name in ("blank", "frozen", "colour", "binding", "identity")}
