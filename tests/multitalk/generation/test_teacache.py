"""TeaCache decisions (against a replica of the official call-counter logic) and the cached forward."""

from __future__ import annotations

import statistics

import pytest
import torch

from multitalk.generation.sampler import timesteps
from multitalk.generation.teacache import (
    RET_STEPS,
    TEACACHE_COEFFICIENTS,
    TeaCache,
    TeaCacheSettings,
    cached_forward,
    polynomial,
    relative_l1,
)
from multitalk.model.configs import CONFIGS
from multitalk.model.dit import MultiTalkDiT

PASSES = ("cond", "drop_text", "uncond")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dit() -> MultiTalkDiT:
    torch.manual_seed(0)
    return MultiTalkDiT(CONFIGS["tiny"].dit).eval()


def _inputs(cfg, batch: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    f, h, w = 2, 4, 4
    frames = 1 + cfg.vae_scale * (f - 1)
    audio = torch.randn(2, frames, cfg.audio_window, cfg.audio_blocks, cfg.audio_channels, generator=g)
    masks = torch.zeros(3, h, w)
    masks[0, :, :2], masks[1, :, 2:] = 1, 1
    masks[2] = 1
    masks[2, 1:3, :] = 0
    return {
        "x": torch.randn(batch, cfg.out_dim, f, h, w, generator=g),
        "context": [torch.randn(5, cfg.text_dim, generator=g), torch.randn(7, cfg.text_dim, generator=g)][:batch]
        + [torch.randn(7, cfg.text_dim, generator=g)] * max(0, batch - 2),
        "clip_fea": torch.randn(1, cfg.clip_tokens, cfg.clip_dim, generator=g),
        "y": torch.randn(1, cfg.in_dim - cfg.out_dim, f, h, w, generator=g),
        "audio": [audio, audio, torch.zeros_like(audio[:1])][:batch],
        "ref_target_masks": masks,
    }


def _prepare_fn(model, args, t):
    def prepare(indices):
        idx = list(indices)
        return model.prepare(
            args["x"][idx],
            t,
            [args["context"][i] for i in idx],
            args["clip_fea"],
            args["y"],
            [args["audio"][i] for i in idx],
            args["ref_target_masks"],
        )

    return prepare


def _official_decisions(e0s, steps, coefficients, threshold, ret_steps=True):
    """A replica of the official per-call counter: cnt over all calls, pass = cnt % 3."""
    calls = steps * 3
    ret, cutoff = (RET_STEPS * 3, calls) if ret_steps else (3, calls - 3)
    acc = [0.0, 0.0, 0.0]
    prev = [None, None, None]
    decisions = []
    for cnt in range(calls):
        p, e0 = cnt % 3, e0s[cnt // 3]
        if cnt < ret or cnt >= cutoff:
            compute, acc[p] = True, 0.0
        else:
            acc[p] += polynomial(coefficients, relative_l1(e0, prev[p]))
            compute = acc[p] >= threshold
            if compute:
                acc[p] = 0.0
        prev[p] = e0
        decisions.append(compute)
    return decisions


@pytest.mark.parametrize("use_ret_steps", [True, False])
def test_decisions_follow_the_official_counter_logic(dit, use_ret_steps):
    steps = 12
    schedule = timesteps(steps, 5.0)
    args = _inputs(dit.cfg, 1)
    e0s = []
    for i in range(steps):
        inputs = _prepare_fn(dit, args, schedule[i : i + 1])([0])
        e0s.append(inputs.e0[0] if use_ret_steps else inputs.e[0])
    rels = [relative_l1(e0s[i], e0s[i - 1]) for i in range(1, steps)]
    coefficients = (1.0, 0.0)  # poly(x) = x: the raw distance
    threshold = 2.5 * statistics.median(rels)
    settings = TeaCacheSettings(threshold=threshold, use_ret_steps=use_ret_steps, coefficients=coefficients)
    cache = TeaCache(settings, steps)
    ours = [cache.decide(i // 3, PASSES[i % 3], e0s[i // 3]) for i in range(steps * 3)]
    official = _official_decisions(e0s, steps, coefficients, threshold, use_ret_steps)
    assert ours == official
    assert True in ours[3 * RET_STEPS :] and False in ours  # the case exercises both branches
    assert cache.skipped == ours.count(False) and cache.computed == ours.count(True)
    if not use_ret_steps:
        assert all(ours[-3:])  # without ret-steps the last step always computes
    assert all(ours[: 3 * (RET_STEPS if use_ret_steps else 1)])


def test_decisions_are_memoised_per_step_and_pass(dit):
    cache = TeaCache(TeaCacheSettings(threshold=1e9), num_steps=10)
    e0 = torch.ones(6, 4)
    for step in range(7):
        first = cache.decide(step, "cond", e0 * (1 + step))
        assert cache.decide(step, "cond", e0 * 123) is first  # a retry (e.g. after OOM) decides the same
    assert cache.computed == RET_STEPS and cache.skipped == 2


def test_official_coefficient_table():
    assert TEACACHE_COEFFICIENTS[("480p", True)][0] == pytest.approx(2.57151496e05)
    assert TEACACHE_COEFFICIENTS[("720p", True)][-1] == pytest.approx(-4.17769401e-02)
    assert TeaCacheSettings(resolution="720p").polynomial == TEACACHE_COEFFICIENTS[("720p", True)]
    assert polynomial((2.0, -3.0, 1.0), 2.0) == 3.0  # 2x^2 - 3x + 1
    with pytest.raises(ValueError, match="no TeaCache coefficients for resolution '1080p'"):
        TeaCacheSettings(resolution="1080p")


def test_never_skipping_is_exactly_the_plain_forward(dit):
    args = _inputs(dit.cfg, 3)
    cache = TeaCache(TeaCacheSettings(threshold=0.0, coefficients=(1.0, 0.0)), num_steps=10)
    schedule = timesteps(10, 5.0)
    with torch.no_grad():
        for step in range(10):
            t = schedule[step : step + 1]
            plain = dit(
                args["x"], t, args["context"], args["clip_fea"], args["y"], args["audio"], args["ref_target_masks"]
            )
            cached = cached_forward(dit, _prepare_fn(dit, args, t), PASSES, step, cache)
            assert torch.equal(plain, cached)
    assert cache.skipped == 0


def test_skipped_passes_add_the_stored_residual(dit):
    args = _inputs(dit.cfg, 3)
    cache = TeaCache(TeaCacheSettings(threshold=1e9), num_steps=8)
    schedule = timesteps(8, 5.0)
    with torch.no_grad():
        residuals = None
        for step in range(8):
            prepare = _prepare_fn(dit, args, schedule[step : step + 1])
            out = cached_forward(dit, prepare, PASSES, step, cache)
            inputs = prepare(range(3))
            if step < RET_STEPS:
                residuals = dit.run_blocks(inputs) - inputs.x
            else:
                expected = dit.finish(inputs, inputs.x + residuals)
                assert torch.equal(out, expected)
    assert cache.skipped_steps == [5, 6, 7] and cache.skipped == 9 and cache.computed == 15


def test_mixed_decisions_run_only_the_computing_passes(dit, monkeypatch):
    args = _inputs(dit.cfg, 3)
    cache = TeaCache(TeaCacheSettings(threshold=1e9), num_steps=8)
    schedule = timesteps(8, 5.0)
    with torch.no_grad():
        for step in range(RET_STEPS):
            cached_forward(dit, _prepare_fn(dit, args, schedule[step : step + 1]), PASSES, step, cache)
        stored = {name: cache.residual(name).clone() for name in PASSES}
        monkeypatch.setattr(cache, "decide", lambda step, name, modulated: name == "cond")
        t = schedule[RET_STEPS : RET_STEPS + 1]
        prepare = _prepare_fn(dit, args, t)
        out = cached_forward(dit, prepare, PASSES, RET_STEPS, cache)
        plain = dit(args["x"], t, args["context"], args["clip_fea"], args["y"], args["audio"], args["ref_target_masks"])
        inputs = prepare(range(3))
    torch.testing.assert_close(out[0], plain[0], rtol=1e-5, atol=1e-5)
    for i in (1, 2):
        x = inputs.x.clone()
        x[i] = inputs.x[i] + stored[PASSES[i]]
        torch.testing.assert_close(out[i], dit.finish(inputs, x)[i])
    assert not torch.equal(cache.residual("cond"), stored["cond"])  # the computed pass refreshed its residual
