"""Gate scores and a chunk's verdict: what each check measured, against which threshold, and the ranking of attempts.

A score is in the check's natural unit (a share of frames, a ΔE, an AUC, a descriptor distance). `higher_is_better`
says which way it points, so a margin can be compared across checks: the best of several attempts at a chunk is the
one that passes most checks, then the one with the largest summed margin. A check that cannot judge a chunk (no
one speaks, no face found) has no score and passes; its `detail` says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GateScore:
    """One check on one chunk."""

    name: str
    score: float | None  # None: the check could not judge this chunk (see detail)
    threshold: float
    higher_is_better: bool
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        if self.score is None:
            return True
        return self.score >= self.threshold if self.higher_is_better else self.score <= self.threshold

    @property
    def margin(self) -> float:
        """How far the score is on the good side of the threshold, relative to it (negative: failed)."""
        if self.score is None:
            return 0.0
        scale = max(abs(self.threshold), 1e-3)
        difference = self.score - self.threshold if self.higher_is_better else self.threshold - self.score
        return difference / scale

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score": None if self.score is None else round(float(self.score), 4),
            "threshold": self.threshold,
            "higher_is_better": self.higher_is_better,
            "passed": self.passed,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GateScore:
        return cls(data["name"], data["score"], data["threshold"], data["higher_is_better"], data.get("detail", {}))


@dataclass(frozen=True)
class Verdict:
    """Every enabled check on one chunk."""

    scores: tuple[GateScore, ...]

    @property
    def passed(self) -> bool:
        return all(score.passed for score in self.scores)

    @property
    def failed(self) -> list[str]:
        return [score.name for score in self.scores if not score.passed]

    def rank(self) -> tuple[int, float]:
        """Larger is better: (checks passed, summed margins, each capped so one huge margin cannot hide a failure)."""
        return (
            sum(score.passed for score in self.scores),
            round(sum(min(score.margin, 1.0) for score in self.scores), 6),
        )

    def summary(self) -> str:
        parts = []
        for score in self.scores:
            shown = "n/a" if score.score is None else f"{score.score:.3g}"
            sign = ">=" if score.higher_is_better else "<="
            parts.append(f"{score.name} {shown} ({'ok' if score.passed else 'FAIL'}, {sign} {score.threshold:g})")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "failed": self.failed, "scores": [score.to_json() for score in self.scores]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        return cls(tuple(GateScore.from_json(item) for item in data["scores"]))
