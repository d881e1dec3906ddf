"""Sampler: official schedules, guidance + Euler per step, the full loop with the DiT, motion latents, APG."""

from __future__ import annotations

import pytest
import torch

from multitalk.generation import sampler as S


def _tol(reference: torch.Tensor, rel: float = 1e-5) -> float:
    return rel * max(1.0, reference.abs().max().item())


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


# --------------------------------------------------------------------------------------------------------
# Schedule


def test_schedules_are_bit_identical(load_parity):
    meta, tensors = load_parity("sampler_schedules")
    assert meta["schedules"], "no schedules in the fixture"
    for entry in meta["schedules"]:
        ts = S.timesteps(entry["steps"], entry["shift"])
        assert ts.dtype == torch.float32 and ts.shape == (entry["steps"] + 1,)
        assert torch.equal(ts, tensors[f"{entry['name']}.timesteps"]), entry["name"]
        assert torch.equal(S.step_sizes(ts), tensors[f"{entry['name']}.dt"]), entry["name"]


def test_sampler_run_schedule(load_parity):
    meta, _ = load_parity("sampler_run")
    ts = S.timesteps(meta["steps"], meta["shift"])
    assert ts.tolist() == meta["timesteps"]
    for mode in meta["modes"].values():
        assert ts[:-1].tolist() == mode["timesteps_fed"]


@pytest.mark.parametrize("steps, shift", [(0, 5.0), (4, 0.0), (4, float("nan")), (2.5, 5.0)])
def test_bad_schedule_arguments_are_rejected(steps, shift):
    with pytest.raises(ValueError, match=r"steps|shift"):
        S.timesteps(steps, shift)


# --------------------------------------------------------------------------------------------------------
# Guidance and the Euler update, one step at a time


def _guidance(mode: dict) -> S.Guidance:
    return S.Guidance(text_scale=mode["text_guide_scale"], audio_scale=mode["audio_guide_scale"])


def _check_pass_order(mode: dict, guidance: S.Guidance) -> None:
    official = mode["pass_order_and_inputs"]
    assert [p.name for p in guidance.passes] == [p["pass"] for p in official]
    for ours, theirs in zip(guidance.passes, official, strict=True):
        assert ours.negative_prompt == (theirs["context"] == "context_neg"), theirs
        assert ours.audio == (theirs["audio"] == "audio"), theirs
    assert len(guidance.passes) == mode["passes_per_step"]


def test_pass_order_matches_official(load_parity):
    meta, _ = load_parity("sampler_run")
    assert set(meta["modes"]) == {"cfg3", "cfg2"}
    for mode in meta["modes"].values():
        _check_pass_order(mode, _guidance(mode))


@pytest.mark.parametrize("mode_name", ["cfg3", "cfg2"])
def test_guidance_and_euler_step_by_step(load_parity, mode_name):
    meta, tensors = load_parity("sampler_run")
    mode = meta["modes"][mode_name]
    guidance = _guidance(mode)
    ts = S.timesteps(meta["steps"], meta["shift"])
    latents, outputs = tensors[f"{mode_name}.latents"], tensors[f"{mode_name}.pass_outputs"]
    assert outputs.shape[:2] == (meta["steps"], mode["passes_per_step"])
    for i in range(meta["steps"]):
        velocity = S.guide(outputs[i], guidance)
        nxt = S.euler_step(latents[i], velocity, ts[i : i + 1], ts[i + 1 : i + 2])
        assert nxt.dtype == torch.float32
        # The official loop recomputes bit-exactly from the same arithmetic; allow fp32 noise only.
        assert _max_diff(nxt, latents[i + 1]) <= 1e-6 * max(1.0, latents[i + 1].abs().max().item()), i


@pytest.mark.parametrize("mode_name", ["cfg3", "cfg2"])
def test_loop_wiring_replays_the_official_run(load_parity, mode_name):
    """The loop feeds the right latent and timestep and combines the passes in the right order."""
    meta, tensors = load_parity("sampler_run")
    mode = meta["modes"][mode_name]
    latents, outputs = tensors[f"{mode_name}.latents"], tensors[f"{mode_name}.pass_outputs"]
    fed: list[float] = []

    def replay(latent, step, passes):
        fed.append(step.t.item())
        assert step.num_steps == meta["steps"]
        assert _max_diff(latent, latents[step.index]) <= 1e-6 * max(1.0, latents[step.index].abs().max().item())
        return outputs[step.index]

    seen: list[torch.Tensor] = []
    final = S.sample(
        replay, tensors["noise"], meta["steps"], meta["shift"], _guidance(mode), on_step=lambda s, x: seen.append(x)
    )
    assert fed == mode["timesteps_fed"]
    assert len(seen) == meta["steps"]
    fixture = tensors[f"{mode_name}.final_latent"]
    assert _max_diff(final, fixture) <= 1e-6 * fixture.abs().max().item()


# --------------------------------------------------------------------------------------------------------
# The whole loop with the DiT


@pytest.fixture(scope="module")
def tiny_dit(load_parity):
    dit = pytest.importorskip("multitalk.model.dit")
    meta, weights = load_parity("dit_weights")
    model = dit.MultiTalkDiT(dit.DiTConfig.from_official(meta["config"]))
    model.load_state_dict(weights, strict=True)
    return model.eval()


def _dit_denoiser(model, tensors, captured: list[torch.Tensor]):
    """All passes of a step as ONE batched forward (samples with 2 persons and with 1 person mixed)."""
    audio, zero_audio = tensors["audio"], torch.zeros_like(tensors["audio"])[-1:]

    def denoise(latent, step, passes):
        batch = len(passes)
        out = model(
            latent.unsqueeze(0).expand(batch, *latent.shape),
            step.t,
            [tensors["context_neg"] if p.negative_prompt else tensors["context_cond"] for p in passes],
            tensors["clip_fea"],
            tensors["y"],
            [audio if p.audio else zero_audio for p in passes],
            tensors["ref_target_masks"],
        )
        captured.append(out)
        return out

    return denoise


@pytest.mark.parametrize("mode_name", ["cfg3", "cfg2"])
def test_full_loop_with_the_dit_matches_official(load_parity, tiny_dit, mode_name):
    meta, tensors = load_parity("sampler_run")
    mode = meta["modes"][mode_name]
    guidance = _guidance(mode)
    _check_pass_order(mode, guidance)
    captured: list[torch.Tensor] = []
    seen: list[torch.Tensor] = []
    with torch.no_grad():
        final = S.sample(
            _dit_denoiser(tiny_dit, tensors, captured),
            tensors["noise"],
            meta["steps"],
            meta["shift"],
            guidance,
            on_step=lambda s, x: seen.append(x),
        )
    latents, outputs = tensors[f"{mode_name}.latents"], tensors[f"{mode_name}.pass_outputs"]
    assert len(captured) == meta["steps"]
    for i in range(meta["steps"]):
        assert _max_diff(captured[i], outputs[i]) <= _tol(outputs[i]), f"pass outputs of step {i}"
        assert _max_diff(seen[i], latents[i + 1]) <= 1e-5 * latents[i + 1].abs().max().item(), f"latent {i + 1}"
    fixture = tensors[f"{mode_name}.final_latent"]
    assert _max_diff(final, fixture) <= 1e-5 * fixture.abs().max().item()


def test_guidance_off_is_one_pass_equal_to_the_cond_prediction(load_parity, tiny_dit):
    """Both scales 1: one forward a step, and that forward is the multi-pass modes' cond prediction."""
    meta, tensors = load_parity("sampler_run")
    guidance = S.Guidance(1.0, 1.0)
    assert [p.name for p in guidance.passes] == ["cond"]
    assert [p.name for p in S.Guidance(1.0, 2.0).passes] == ["cond", "drop_audio"]  # audio guidance alone: 2
    captured: list[torch.Tensor] = []
    with torch.no_grad():
        final = S.sample(
            _dit_denoiser(tiny_dit, tensors, captured), tensors["noise"], meta["steps"], meta["shift"], guidance
        )
    assert len(captured) == meta["steps"] and all(out.shape[0] == 1 for out in captured)  # 1 forward, batch 1
    for mode_name in ("cfg3", "cfg2"):  # step 0 sees the same latent and timestep in every mode
        cond = tensors[f"{mode_name}.pass_outputs"][0, 0]
        assert _max_diff(captured[0][0], cond) <= _tol(cond), mode_name
    ts = S.timesteps(meta["steps"], meta["shift"])
    x = tensors["noise"]
    for i, out in enumerate(captured):  # the velocity is the cond prediction itself
        assert torch.equal(S.guide(out, guidance), out[0].float())
        x = S.euler_step(x, out[0].float(), ts[i : i + 1], ts[i + 1 : i + 2])
    assert torch.equal(final, x)


# --------------------------------------------------------------------------------------------------------
# Streaming: motion replacement, condition masks, per-chunk generators


def test_motion_replacement_matches_official(load_parity):
    meta, tensors = load_parity("streaming")
    schedule = meta["replacement"]["schedule"]
    ts = S.timesteps(schedule["steps"], schedule["shift"])
    assert torch.equal(ts, tensors["timesteps"])
    assert torch.equal(ts / S.NUM_TIMESTEPS, tensors["sigma"])
    motion = tensors["motion_latent"]
    assert motion.shape[1] == meta["T_m"] == S.motion_latent_frames(meta["motion_frame"])
    for j in range(ts.numel()):
        out = S.replace_motion(tensors["latent_in"][j], motion, ts[j], tensors["noise"][j])
        assert _max_diff(out, tensors["out"][j]) <= 1e-6, j
    assert torch.equal(out[:, : meta["T_m"]], motion)  # the last replacement (σ = 0) is the motion latent


def test_condition_masks_match_official(load_parity):
    meta, tensors = load_parity("streaming")
    f_lat, t_m = meta["latent_frames_per_chunk"], meta["T_m"]
    first = S.condition_mask(meta["frame_num"], 1)
    later = S.condition_mask(meta["frame_num"], meta["motion_frame"])
    assert first.shape == later.shape == (4, f_lat)
    assert torch.equal(first, tensors["mask_first_chunk"])
    assert torch.equal(later, tensors["mask_later_chunk"])
    if (meta["motion_frame"] - 1) % 4 == 0:  # whole latent frames: exactly the first T_m are marked
        assert torch.equal(later[:, :t_m], torch.ones(4, t_m)) and not later[:, t_m:].any()


def test_loop_renoises_motion_before_and_after_every_step(load_parity):
    meta, tensors = load_parity("streaming")
    schedule = meta["replacement"]["schedule"]
    motion, start = tensors["motion_latent"], tensors["latent_in"][0]
    seen: list[torch.Tensor] = []

    def still(latent, step, passes):  # zero velocity: only the replacements change the latent
        seen.append(latent)
        return torch.zeros(len(passes), *latent.shape)

    final = S.sample(
        still,
        start,
        schedule["steps"],
        schedule["shift"],
        S.Guidance(),
        motion=motion,
        generator=S.chunk_generator(7, 1),
    )
    ts = S.timesteps(schedule["steps"], schedule["shift"])
    replay = S.chunk_generator(7, 1)
    expected = S.replace_motion(start, motion, ts[0], S.draw_noise(motion.shape, replay))
    for i in range(schedule["steps"]):
        assert torch.equal(seen[i], expected), i
        expected = S.replace_motion(expected, motion, ts[i + 1], S.draw_noise(motion.shape, replay))
    assert torch.equal(final, expected)
    t_m = motion.shape[1]
    assert torch.equal(final[:, :t_m], motion) and torch.equal(final[:, t_m:], start[:, t_m:])


def test_chunk_generators_ignore_global_rng_and_resume_identically():
    torch.manual_seed(0)
    a = S.draw_noise((3, 4), S.chunk_generator(42, 3))
    torch.manual_seed(123)
    torch.randn(10)
    b = S.draw_noise((3, 4), S.chunk_generator(42, 3))
    assert torch.equal(a, b)
    assert not torch.equal(a, S.draw_noise((3, 4), S.chunk_generator(42, 4)))
    assert not torch.equal(a, S.draw_noise((3, 4), S.chunk_generator(43, 3)))
    assert S.chunk_seed(42, 3) == S.chunk_seed(42, 3) < 2**63


def test_sample_rejects_bad_inputs():
    noise = torch.zeros(2, 3, 2, 2)
    with pytest.raises(ValueError, match="expected"):
        S.sample(lambda x, s, p: torch.zeros(1, *x.shape), noise, 2, 5.0)
    with pytest.raises(ValueError, match="generator"):
        S.sample(lambda x, s, p: torch.zeros(len(p), *x.shape), noise, 2, 5.0, motion=noise[:, :1])
    with pytest.raises(ValueError, match="text_scale"):
        S.Guidance(text_scale=float("nan"))


# --------------------------------------------------------------------------------------------------------
# APG


def _preds(passes: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(passes, 4, 3, 4, 6, generator=g)


@pytest.mark.parametrize("text_scale", [5.0, 1.0])
def test_apg_without_projection_clip_or_momentum_is_plain_cfg(text_scale):
    plain = S.Guidance(text_scale=text_scale, audio_scale=3.0)
    apg = S.Guidance(text_scale=text_scale, audio_scale=3.0, apg=S.APG(momentum=0.0, norm_threshold=0.0, eta=1.0))
    preds = _preds(len(plain.passes))
    torch.testing.assert_close(S.guide(preds, apg), S.guide(preds, plain), rtol=0, atol=1e-5)


def test_apg_update_is_orthogonal_clipped_and_uses_momentum():
    cond, drop = _preds(2, seed=1) * torch.tensor([1.0, 4.0]).view(2, 1, 1, 1, 1)
    diff = cond - drop
    cfg = S.APG(momentum=-0.5, norm_threshold=2.0, eta=0.0)
    update = S.adaptive_projected_guidance(diff, cond, cfg)
    assert abs(torch.dot(update.flatten().double(), cond.flatten().double()).item()) < 1e-4
    assert torch.linalg.vector_norm(update) <= 2.0 + 1e-5  # clipped before projection
    parallel, orthogonal = S.project(diff, cond)
    torch.testing.assert_close(parallel + orthogonal, diff)

    # Momentum: the second call sees diff2 + momentum * diff1 (before clipping and projection).
    buffer = S.GuidanceState.for_guidance(S.Guidance(apg=cfg)).audio
    S.adaptive_projected_guidance(diff, cond, cfg, buffer)
    diff2 = _preds(1, seed=2)[0]
    got = S.adaptive_projected_guidance(diff2, cond, cfg, buffer)
    averaged = diff2 + cfg.momentum * diff
    clipped = averaged * min(1.0, cfg.norm_threshold / torch.linalg.vector_norm(averaged).item())
    unit = cond.flatten().double() / torch.linalg.vector_norm(cond.double())
    expected = clipped.flatten().double() - torch.dot(clipped.flatten().double(), unit) * unit
    torch.testing.assert_close(got.flatten().double(), expected, rtol=1e-5, atol=1e-5)


def test_apg_state_is_per_sample_call():
    """Two identical `sample` calls with APG give identical results: the momentum does not leak."""
    guidance = S.Guidance(apg=S.APG())
    preds = _preds(3, seed=3) * 30

    def denoise(latent, step, passes):
        return preds + latent.unsqueeze(0)

    noise = torch.zeros(4, 3, 4, 6)
    first = S.sample(denoise, noise, 3, 5.0, guidance)
    assert torch.equal(first, S.sample(denoise, noise, 3, 5.0, guidance))
    assert not torch.equal(first, S.sample(denoise, noise, 3, 5.0, S.Guidance()))
