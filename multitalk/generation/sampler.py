"""Flow-matching Euler sampling with MultiTalk's shifted schedule, text/audio guidance and motion latents.

The model predicts a velocity v; one Euler step is `x <- x - v * (t_i - t_{i+1}) / 1000` on the shifted
timesteps `t' = 1000 * s * u / (1 + (s - 1) * u)`, u = t / 1000, of `linspace(1000, 1, N)` + [0].

Guidance (official MultiTalk `generate()`), per step:
- 3 passes: cond (prompt, audio), drop_text (negative prompt, audio), uncond (negative prompt, zero audio):
  `v = uncond + s_t * (cond - drop_text) + s_a * (drop_text - uncond)`;
- 2 passes when s_t == 1 (the distilled-LoRA setting): cond and drop_audio (prompt, zero audio):
  `v = drop_audio + s_a * (cond - drop_audio)`;
- **ours**: 1 pass when s_t == s_a == 1 (guidance off, a CFG-distilled LoRA): every formula above is then `cond`,
  so only the cond prediction is computed (the official code still runs 2 forwards a step);
- optionally APG (adaptive projected guidance): each guidance difference is passed through a momentum
  buffer, clipped to a norm threshold, and only its component orthogonal to the cond prediction is kept
  (plus `eta` times the parallel one): `v = cond + (s - 1) * apg(diff)` per difference.

The sampler knows nothing about the model. The caller passes a `denoise(latent, step, passes)` callable that
returns one prediction per pass; it can run all passes of a step as one batched forward, and it is also the
hook for step caching (TeaCache: it may return cached predictions instead of running the model).

Streaming (later chunks): the first T_m latent frames are replaced by the previous chunk's motion latent,
re-noised to the current noise level, `(1 - σ) * motion + σ * fresh_noise` with σ = t / 1000, before step 0
and after every step with the next timestep. Fresh noise comes from a local `torch.Generator` whose seed
derives from (scene seed, chunk index), so a resumed render equals an uninterrupted one.

Everything here is float32 and matches the official code's parity fixtures (`sampler_schedules`, `sampler_run`,
`streaming`; tests/multitalk/generation/test_sampler.py).

References:
- MeiGen-AI/MultiTalk `wan/multitalk.py` (`generate`, `add_noise`, `timestep_transform`) and
  `wan/utils/multitalk_utils.py` (`MomentumBuffer`, `adaptive_projected_guidance`).
- Lipman et al., "Flow Matching for Generative Modeling" (2023), arXiv:2210.02747.
- Sadat et al., "Eliminating Oversaturation and Artifacts of High Guidance Scales in Diffusion Models"
  (APG, 2024), arXiv:2410.02416.
- tests/multitalk/generation/test_sampler.py and test_streaming.py (the parity checks).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

NUM_TIMESTEPS = 1000  # the training timestep scale; σ = t / NUM_TIMESTEPS


# --------------------------------------------------------------------------------------------------------
# Schedule and Euler step


def timesteps(steps: int, shift: float, num_timesteps: int = NUM_TIMESTEPS) -> torch.Tensor:
    """The shifted schedule: (steps + 1,) float32, from num_timesteps down to the appended 0.

    float32 throughout, in the official operation order, so the values are bit-identical to the official
    ones (the linspace is numpy's, computed in float64 and rounded, as the official code does).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not math.isfinite(shift) or shift <= 0:
        raise ValueError(f"shift must be a positive number, got {shift!r}")
    base = np.linspace(num_timesteps, 1, steps, dtype=np.float32)
    t = torch.from_numpy(np.append(base, np.float32(0.0)))  # (steps+1,) float32
    u = t / num_timesteps
    shifted = shift * u / (1 + (shift - 1) * u)
    return shifted * num_timesteps


def step_sizes(ts: torch.Tensor, num_timesteps: int = NUM_TIMESTEPS) -> torch.Tensor:
    """(t_i - t_{i+1}) / num_timesteps for each step: (steps,) float32."""
    return (ts[:-1] - ts[1:]) / num_timesteps


def euler_step(latent: torch.Tensor, velocity: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
    """One Euler step from t to t_next (0..1000 scale), float32."""
    dt = (t - t_next) / NUM_TIMESTEPS
    return latent + (-velocity.float()) * dt


# --------------------------------------------------------------------------------------------------------
# Guidance


@dataclass(frozen=True)
class GuidancePass:
    """One model evaluation of a step: which text and whether the real audio goes in."""

    name: str  # "cond", "drop_text", "uncond" or "drop_audio"
    negative_prompt: bool  # True: the negative-prompt context; False: the prompt
    audio: bool  # False: zero audio with one person (the null-audio branch)


COND = GuidancePass("cond", negative_prompt=False, audio=True)
DROP_TEXT = GuidancePass("drop_text", negative_prompt=True, audio=True)
UNCOND = GuidancePass("uncond", negative_prompt=True, audio=False)
DROP_AUDIO = GuidancePass("drop_audio", negative_prompt=False, audio=False)


@dataclass(frozen=True)
class APG:
    """Adaptive projected guidance settings (defaults: the official CLI's)."""

    momentum: float = -0.75  # running average: avg <- diff + momentum * avg
    norm_threshold: float = 55.0  # clip each difference to this L2 norm (<= 0: no clipping)
    eta: float = 0.0  # weight of the component parallel to the cond prediction


@dataclass(frozen=True)
class Guidance:
    """Text and audio guidance scales; `text_scale == 1` switches to the 2-pass mode."""

    text_scale: float = 5.0
    audio_scale: float = 4.0
    apg: APG | None = None

    def __post_init__(self) -> None:
        for name in ("text_scale", "audio_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"guidance {name} must be a finite number, got {value!r}")

    @property
    def one_pass(self) -> bool:
        """Guidance off (both scales 1, e.g. a CFG-distilled LoRA): every formula reduces to the cond prediction."""
        return math.isclose(self.text_scale, 1.0) and math.isclose(self.audio_scale, 1.0)

    @property
    def two_pass(self) -> bool:
        return math.isclose(self.text_scale, 1.0) and not self.one_pass

    @property
    def passes(self) -> tuple[GuidancePass, ...]:
        """The model evaluations of one step, in the official order."""
        if self.one_pass:
            return (COND,)
        return (COND, DROP_AUDIO) if self.two_pass else (COND, DROP_TEXT, UNCOND)


def project(v0: torch.Tensor, v1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(parallel, orthogonal) parts of v0 relative to v1, over all elements, computed in float64."""
    dtype = v0.dtype
    a, b = v0.double(), v1.double()
    unit = F.normalize(b.reshape(-1), dim=0).reshape(b.shape)
    parallel = (a * unit).sum() * unit
    return parallel.to(dtype), (a - parallel).to(dtype)


@dataclass
class _Momentum:
    momentum: float
    average: torch.Tensor | None = None

    def update(self, value: torch.Tensor) -> torch.Tensor:
        self.average = value if self.average is None else value + self.momentum * self.average
        return self.average


def adaptive_projected_guidance(
    diff: torch.Tensor, pred_cond: torch.Tensor, apg: APG, momentum: _Momentum | None = None
) -> torch.Tensor:
    """The APG update for one guidance difference (to be scaled by `scale - 1` and added to cond)."""
    if momentum is not None:
        diff = momentum.update(diff)
    if apg.norm_threshold > 0:
        norm = torch.linalg.vector_norm(diff)
        diff = diff * torch.clamp(apg.norm_threshold / norm, max=1.0)
    parallel, orthogonal = project(diff, pred_cond)
    return orthogonal + apg.eta * parallel


@dataclass
class GuidanceState:
    """Per-chunk state of the guidance (APG momentum buffers); a fresh one for each `sample` call."""

    text: _Momentum | None = None
    audio: _Momentum | None = None

    @classmethod
    def for_guidance(cls, guidance: Guidance) -> GuidanceState:
        if guidance.apg is None:
            return cls()
        return cls(_Momentum(guidance.apg.momentum), _Momentum(guidance.apg.momentum))


def guide(preds: torch.Tensor, guidance: Guidance, state: GuidanceState | None = None) -> torch.Tensor:
    """Combine the per-pass predictions (passes, C, F, H, W), in `guidance.passes` order, into one velocity."""
    n = len(guidance.passes)
    if preds.shape[0] != n:
        raise ValueError(f"expected {n} predictions ({[p.name for p in guidance.passes]}), got {preds.shape[0]}")
    preds = preds.float()
    if guidance.one_pass:
        return preds[0]
    s_t, s_a = guidance.text_scale, guidance.audio_scale
    if guidance.apg is not None:
        state = state if state is not None else GuidanceState.for_guidance(guidance)
        if guidance.two_pass:
            cond, drop_audio = preds
            return cond + (s_a - 1) * adaptive_projected_guidance(cond - drop_audio, cond, guidance.apg, state.audio)
        cond, drop_text, uncond = preds
        text = adaptive_projected_guidance(cond - drop_text, cond, guidance.apg, state.text)
        audio = adaptive_projected_guidance(drop_text - uncond, cond, guidance.apg, state.audio)
        return cond + (s_t - 1) * text + (s_a - 1) * audio
    if guidance.two_pass:
        cond, drop_audio = preds
        return drop_audio + s_a * (cond - drop_audio)
    cond, drop_text, uncond = preds
    return uncond + s_t * (cond - drop_text) + s_a * (drop_text - uncond)


# --------------------------------------------------------------------------------------------------------
# Streaming: motion latents, condition masks, per-chunk randomness


def replace_motion(
    latent: torch.Tensor, motion: torch.Tensor, t: torch.Tensor | float, noise: torch.Tensor
) -> torch.Tensor:
    """latent with frames [:T_m] set to `(1 - σ) * motion + σ * noise`, σ = t / 1000 (a new tensor).

    latent: (C, F, H, W); motion, noise: (C, T_m, H, W).
    """
    if motion.shape != noise.shape or motion.dim() != latent.dim() or motion.shape[1] > latent.shape[1]:
        raise ValueError(
            f"motion {tuple(motion.shape)} and noise {tuple(noise.shape)} must be equal (C, T_m, H, W) "
            f"with T_m <= the latent's {tuple(latent.shape)} frames"
        )
    sigma = torch.as_tensor(t, dtype=torch.float32, device=latent.device).reshape(()) / NUM_TIMESTEPS
    out = latent.clone()
    out[:, : motion.shape[1]] = (1 - sigma) * motion + sigma * noise
    return out


def motion_latent_frames(motion_frames: int, vae_scale: int = 4) -> int:
    """Latent frames covering `motion_frames` video frames (first frame alone, then groups of vae_scale)."""
    if motion_frames < 1:
        raise ValueError(f"motion_frames must be at least 1, got {motion_frames}")
    return 1 + (motion_frames - 1) // vae_scale


def condition_mask(frame_num: int, cond_frames: int, vae_scale: int = 4) -> torch.Tensor:
    """The 4 mask channels of the condition `y`: (vae_scale, F_lat), constant in space.

    1 on the first `cond_frames` video frames (the reference image for the first chunk, the motion frames
    for later ones); frame 0 is repeated vae_scale times so the frames regroup into latent frames.
    """
    if (frame_num - 1) % vae_scale or not 1 <= cond_frames <= frame_num:
        raise ValueError(
            f"frame_num must be 1 + {vae_scale}*n and 1 <= cond_frames <= frame_num; "
            f"got frame_num={frame_num}, cond_frames={cond_frames}"
        )
    frames = torch.zeros(frame_num)
    frames[:cond_frames] = 1
    frames = torch.cat([frames[:1].repeat(vae_scale), frames[1:]])  # (vae_scale + frame_num - 1,)
    return frames.view(-1, vae_scale).transpose(0, 1).contiguous()  # (vae_scale, F_lat)


def chunk_seed(scene_seed: int, chunk_index: int) -> int:
    """A 63-bit seed for chunk k of a scene, from a hash (independent of any global RNG state)."""
    if chunk_index < 0:
        raise ValueError(f"chunk_index must be >= 0, got {chunk_index}")
    digest = hashlib.sha256(f"multitalk/chunk/{int(scene_seed)}/{int(chunk_index)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def chunk_generator(scene_seed: int, chunk_index: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A local generator for chunk k's random draws (initial noise, then motion re-noising)."""
    return torch.Generator(device=device).manual_seed(chunk_seed(scene_seed, chunk_index))


def draw_noise(shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    """Standard normal float32 noise from `generator`, on the generator's device."""
    return torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=torch.float32)


# --------------------------------------------------------------------------------------------------------
# The loop


@dataclass(frozen=True)
class Step:
    """Where the loop is: step `index` of `num_steps`, going from `t` to `t_next` (0..1000 scale)."""

    index: int
    num_steps: int
    t: torch.Tensor = field(repr=False)  # (1,) float32, what the model is fed
    t_next: torch.Tensor = field(repr=False)  # (1,) float32


class Denoiser(Protocol):
    """Runs the model for the passes of one step; returns (len(passes), C, F, H, W)."""

    def __call__(self, latent: torch.Tensor, step: Step, passes: Sequence[GuidancePass]) -> torch.Tensor: ...


def sample(
    denoise: Denoiser,
    noise: torch.Tensor,
    steps: int | None = None,
    shift: float | None = None,
    guidance: Guidance | None = None,
    *,
    schedule: torch.Tensor | None = None,
    motion: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    on_step: Callable[[Step, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Sample one latent: Euler over the shifted schedule with guidance, float32.

    Args:
        denoise: model callable, see `Denoiser`.
        noise: (C, F, H, W) initial latent.
        steps, shift: the schedule (or pass `schedule`, a (steps+1,) timestep tensor, instead).
        guidance: scales and options; default text 5, audio 4.
        motion: (C, T_m, H, W) motion latent of the previous chunk, for later chunks of a stream.
        generator: source of the fresh noise for every motion replacement (see `chunk_generator`).
        on_step: called after every step with the step and the new latent (progress, tracing).

    Returns:
        (C, F, H, W) float32 final latent.
    """
    guidance = guidance if guidance is not None else Guidance()
    if schedule is None:
        if steps is None or shift is None:
            raise ValueError("pass steps and shift, or a schedule")
        schedule = timesteps(steps, shift)
    schedule = schedule.to(torch.float32).cpu()
    if schedule.dim() != 1 or schedule.numel() < 2:
        raise ValueError(f"schedule must be (steps+1,) timesteps, got shape {tuple(schedule.shape)}")
    if noise.dim() != 4:
        raise ValueError(f"noise must be (C, F, H, W), got {tuple(noise.shape)}")
    latent = noise.to(torch.float32)
    if motion is not None:
        if generator is None:
            raise ValueError("motion replacement needs a generator (use chunk_generator(scene_seed, k))")
        motion = motion.to(device=latent.device, dtype=torch.float32)

    def renoise_motion(current: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        fresh = draw_noise(motion.shape, generator).to(current.device)
        return replace_motion(current, motion, t, fresh)

    num_steps = schedule.numel() - 1
    if motion is not None:
        latent = renoise_motion(latent, schedule[0])
    passes = guidance.passes
    state = GuidanceState.for_guidance(guidance)
    for i in range(num_steps):
        step = Step(i, num_steps, schedule[i : i + 1], schedule[i + 1 : i + 2])
        preds = denoise(latent, step, passes)
        expected = (len(passes), *latent.shape)
        if tuple(preds.shape) != expected:
            raise ValueError(
                f"denoise returned shape {tuple(preds.shape)}, expected {expected} "
                f"(one prediction per pass: {[p.name for p in passes]})"
            )
        velocity = guide(preds.to(latent.device), guidance, state)
        latent = euler_step(latent, velocity, step.t.to(latent.device), step.t_next.to(latent.device))
        if motion is not None:
            latent = renoise_motion(latent, schedule[i + 1])
        if on_step is not None:
            on_step(step, latent)
        logger.debug("step %d/%d t=%.3f", i + 1, num_steps, float(step.t))
    return latent
