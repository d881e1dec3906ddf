"""The gates on synthetic chunks: a speaker swap, a bystander talking, a black and a colour-shifted chunk are
flagged; clean chunks are not."""

from __future__ import annotations

import numpy as np
import pytest

from multitalk.quality.gates import check_chunk
from multitalk.quality.speaker_binding import auc
from multitalk.quality.verdict import Verdict
from multitalk.quality.voice_activity import voice_activity
from multitalk.screenplay.gates import GateLimit, Gates
from tests.multitalk.quality import synthetic as syn

LIMITS = Gates(identity=GateLimit(enabled=False)).limits()  # identity needs real faces: test_identity.py
FIRST_HALF, SECOND_HALF = (0, 40), (40, 80)


def verdict(frames: np.ndarray, *spans_per_person: tuple[tuple[int, int], ...]) -> Verdict:
    activity = [voice_activity(syn.track(syn.speaking(*spans)), syn.FRAMES) for spans in spans_per_person]
    return check_chunk(frames, syn.material(), activity, LIMITS)


def scores(result: Verdict) -> dict[str, float | None]:
    return {score.name: score.score for score in result.scores}


def test_voice_activity_follows_the_track() -> None:
    active = syn.speaking((10, 30), (33, 50))  # a 3-frame pause between words is closed
    found = voice_activity(syn.track(active), syn.FRAMES)
    assert found[10:50].all() and not found[:10].any() and not found[50:].any()


def test_auc_extremes() -> None:
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert auc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5


def test_clean_dialogue_passes() -> None:
    moving = [syn.speaking(FIRST_HALF), syn.speaking(SECOND_HALF)]
    result = verdict(syn.frames(moving), (FIRST_HALF,), (SECOND_HALF,))
    assert result.passed, result.summary()
    assert scores(result)["binding"] > 0.9


def test_clean_monologue_with_a_silent_listener_passes() -> None:
    moving = [syn.speaking((0, 60)), syn.speaking()]
    result = verdict(syn.frames(moving, seed=1), ((0, 60),), ())
    assert result.passed, result.summary()


def test_speaker_swap_is_flagged() -> None:
    moving = [syn.speaking(SECOND_HALF), syn.speaking(FIRST_HALF)]  # each mouth moves to the other's voice
    result = verdict(syn.frames(moving), (FIRST_HALF,), (SECOND_HALF,))
    assert result.failed == ["binding"], result.summary()
    assert scores(result)["binding"] < 0.2


def test_bystander_talking_is_flagged() -> None:
    moving = [syn.speaking((0, 80)), syn.speaking((0, 80))]  # person 2 never speaks, yet moves their lips
    result = verdict(syn.frames(moving), ((0, 80),), ())
    assert result.failed == ["binding"], result.summary()
    binding = next(score for score in result.scores if score.name == "binding")
    assert binding.detail["auc"]["person 2"] < 0.6


def test_black_chunk_is_flagged() -> None:
    black = np.zeros((syn.FRAMES, syn.HEIGHT, syn.WIDTH, 3), dtype=np.uint8)
    result = verdict(black, (FIRST_HALF,), (SECOND_HALF,))
    assert {"blank", "frozen", "colour"} <= set(result.failed)
    assert scores(result)["blank"] == 1.0


def test_colour_shifted_chunk_is_flagged() -> None:
    moving = [syn.speaking(FIRST_HALF), syn.speaking(SECOND_HALF)]
    shifted = syn.frames(moving).astype(np.int16) + np.array([40, 0, -30], dtype=np.int16)
    result = verdict(shifted.clip(0, 255).astype(np.uint8), (FIRST_HALF,), (SECOND_HALF,))
    assert result.failed == ["colour"], result.summary()
    assert scores(result)["colour"] > 15


def test_frozen_chunk_is_flagged() -> None:
    still = np.repeat(syn.reference()[None], syn.FRAMES, axis=0)
    result = verdict(still, (FIRST_HALF,), (SECOND_HALF,))
    assert "frozen" in result.failed and "blank" not in result.failed


def test_silent_chunk_cannot_be_judged_for_binding() -> None:
    result = verdict(syn.frames([syn.speaking(), syn.speaking()]), (), ())
    binding = next(score for score in result.scores if score.name == "binding")
    assert binding.score is None and binding.passed and binding.detail["reason"] == "no one speaks in this chunk"


def test_thresholds_come_from_the_screenplay() -> None:
    moving = [syn.speaking(FIRST_HALF), syn.speaking(SECOND_HALF)]
    activity = [voice_activity(syn.track(syn.speaking(s)), syn.FRAMES) for s in (FIRST_HALF, SECOND_HALF)]
    strict = Gates(colour=GateLimit(threshold=0.01), identity=GateLimit(enabled=False)).limits()
    result = check_chunk(syn.frames(moving), syn.material(), activity, strict)
    assert result.failed == ["colour"]
    assert [s.name for s in result.scores] == ["blank", "frozen", "colour", "binding"]


def test_verdict_round_trips_and_ranks() -> None:
    moving = [syn.speaking(FIRST_HALF), syn.speaking(SECOND_HALF)]
    good = verdict(syn.frames(moving), (FIRST_HALF,), (SECOND_HALF,))
    bad = verdict(syn.frames(moving[::-1]), (FIRST_HALF,), (SECOND_HALF,))
    assert Verdict.from_json(good.to_json()) == good
    assert good.rank() > bad.rank()


@pytest.mark.parametrize("name", ["blank", "frozen", "colour", "binding"])
def test_a_disabled_gate_does_not_run(name: str) -> None:
    limits = Gates(**{name: GateLimit(enabled=False)}, identity=GateLimit(enabled=False)).limits()
    black = np.zeros((syn.FRAMES, syn.HEIGHT, syn.WIDTH, 3), dtype=np.uint8)
    result = check_chunk(black, syn.material(), [syn.speaking(), syn.speaking()], limits)
    assert name not in [score.name for score in result.scores]
