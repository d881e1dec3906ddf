"""Re-roll choices: first passing attempt kept, else the best; found attempts are never rendered again."""

from __future__ import annotations

from pathlib import Path

from multitalk.generation.streaming import ChunkGeometry, plan_chunks
from multitalk.quality.policy import attempt_keys, attempt_seed
from multitalk.quality.reroll import choose, reroll
from multitalk.quality.verdict import GateScore, Verdict
from multitalk.renderers.base import SceneContext
from multitalk.screenplay.gates import Gates
from multitalk.store.store import Entry, Store

CHUNK = plan_chunks(100, ChunkGeometry(21, 5))[1]


def context(gates: Gates) -> SceneContext:
    return SceneContext("s", Path("x.png"), "", None, (), (), 100, "480p", 42, gates=gates)


def verdict(binding: float) -> Verdict:
    return Verdict((GateScore("binding", binding, 0.6, True),))


def renderer_of(store: Store, scores: dict[int, float], calls: list[int]):
    """Commits an attempt whose binding score depends on its seed (as a renderer's output would)."""
    by_seed = {attempt_seed(42, CHUNK.index, attempt): score for attempt, score in scores.items()}

    def render_attempt(key: str, attempt_context: SceneContext) -> Entry:
        calls.append(attempt_context.seed)
        result = {"gates": {"seed": attempt_context.seed, **verdict(by_seed[attempt_context.seed]).to_json()}}
        return store.put("chunk", key, {"segment.mp4": str(attempt_context.seed).encode()}, **result)

    return render_attempt


def test_first_passing_attempt_is_kept_and_never_rendered_again(tmp_path: Path) -> None:
    store, calls = Store(tmp_path), []
    gates = Gates(mode="reroll", attempts=3)
    render_attempt = renderer_of(store, {0: 0.1, 1: 0.9, 2: 0.95, 3: 0.95}, calls)
    kept, record = reroll(store, "chunk", "slot", gates, context(gates), CHUNK, render_attempt)
    assert calls == [42, attempt_seed(42, CHUNK.index, 1)]  # stopped at the first pass
    assert record["kept"] == 1 and [a["passed"] for a in record["attempts"]] == [False, True]
    assert kept.file("segment.mp4").read_bytes() == str(calls[1]).encode()
    again, record_again = reroll(store, "chunk", "slot", gates, context(gates), CHUNK, render_attempt)
    assert calls == [42, attempt_seed(42, CHUNK.index, 1)] and record_again == record and again.key == kept.key


def test_all_failing_keeps_the_best(tmp_path: Path) -> None:
    store, calls = Store(tmp_path), []
    gates = Gates(mode="reroll", attempts=2)
    _, record = reroll(
        store, "chunk", "slot", gates, context(gates), CHUNK, renderer_of(store, {0: 0.1, 1: 0.5, 2: 0.3}, calls)
    )
    assert len(calls) == 3 and record["kept"] == 1 and not record["passed"]


def test_choose_prefers_passing_then_rank() -> None:
    assert choose([verdict(0.1), verdict(0.7), verdict(0.99)]) == 1
    assert choose([verdict(0.1), verdict(0.4), verdict(0.4)]) == 1  # the earliest of equals


def test_attempt_seeds_and_keys() -> None:
    assert attempt_seed(42, 3, 0) == 42
    seeds = {attempt_seed(42, 3, n) for n in range(1, 6)} | {attempt_seed(42, 4, 1)}
    assert len(seeds) == 6 and all(0 <= s < 2**31 for s in seeds)
    assert attempt_seed(42, 3, 1) == attempt_seed(42, 3, 1)
    assert len(attempt_keys(context(Gates(mode="reroll", attempts=2)), 3, "slot")) == 3
    assert attempt_keys(context(Gates(mode="warn")), 3, "slot") == []
