"""TeaCache: skip the DiT blocks on steps whose timestep-modulated input barely changed.

Between neighbouring sampling steps the output of the transformer blocks changes little where the timestep
embedding changes little. TeaCache measures, for every model evaluation, the relative L1 change of the
modulated input against the previous evaluation of the same guidance pass,

    d = mean|m_i - m_{i-1}| / mean|m_{i-1}|,

rescales it with a polynomial fitted per model (`coefficients`, highest degree first), and accumulates it. While
the sum stays below `threshold` the blocks are skipped and the residual they added last time (blocks output
minus blocks input) is added to the new input instead; once it reaches the threshold the blocks run, the
residual is refreshed and the sum restarts at 0. The head always runs.

As in the official MultiTalk TeaCache (facts, not code, taken from MeiGen-AI/MultiTalk
`wan/modules/multitalk_model.py`, `teacache_init` and `forward`):
- each guidance pass (cond, drop_text, uncond / drop_audio) has its own accumulator, previous input and
  residual;
- with `use_ret_steps` (the official default) the modulated input is the per-block time projection `e0`, the
  first 5 steps always compute and no step is forced at the end; without it the input is the time embedding
  `e`, the first step and the last step always compute;
- polynomial coefficients are fitted for the 14B I2V model at 480p and 720p (table below).

**Ours**: the state is per chunk (a fresh `TeaCache` per `sample` call; the official code resets a call counter
that wraps every chunk, with the same effect), and passes are identified by name rather than by a call
counter modulo 3, so the 2-pass mode (cond, drop_audio) keeps its passes apart too. Decisions are memoised per
(step, pass), so a step retried after a CUDA out-of-memory error makes the same decisions.

References:
- Liu et al., "Timestep Embedding Tells: It's Time to Cache for Video Diffusion Model" (TeaCache, 2024),
  arXiv:2411.19108; ali-vilab/TeaCache.
- MeiGen-AI/MultiTalk `wan/modules/multitalk_model.py` (`teacache_init`, the coefficients).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from multitalk.model.dit import DiTInputs, MultiTalkDiT

logger = logging.getLogger(__name__)

# (resolution, use_ret_steps) -> polynomial coefficients, highest degree first (np.poly1d order).
TEACACHE_COEFFICIENTS: dict[tuple[str, bool], tuple[float, ...]] = {
    ("480p", True): (2.57151496e05, -3.54229917e04, 1.40286849e03, -1.35890334e01, 1.32517977e-01),
    ("720p", True): (8.10705460e03, 2.13393892e03, -3.72934672e02, 1.66203073e01, -4.17769401e-02),
    ("480p", False): (-3.02331670e02, 2.23948934e02, -5.25463970e01, 5.87348440e00, -2.01973289e-01),
    ("720p", False): (-114.36346466, 65.26524496, -18.82220707, 4.91518089, -0.23412683),
}
RET_STEPS = 5  # with use_ret_steps: steps that always run the blocks at the start
DEFAULT_THRESHOLD = 0.2  # official `--teacache_thresh` default


def polynomial(coefficients: Sequence[float], x: float) -> float:
    """Evaluate a polynomial given highest degree first (Horner), as `numpy.poly1d(coefficients)(x)`."""
    value = 0.0
    for c in coefficients:
        value = value * x + c
    return value


def relative_l1(current: torch.Tensor, previous: torch.Tensor) -> float:
    """mean|current - previous| / mean|previous|, computed in fp32."""
    current, previous = current.float(), previous.float()
    return ((current - previous).abs().mean() / previous.abs().mean()).item()


@dataclass(frozen=True)
class TeaCacheSettings:
    """TeaCache options. `coefficients=None` takes the official table entry for `resolution`."""

    threshold: float = DEFAULT_THRESHOLD  # skip while the accumulated rescaled distance stays below this
    resolution: str = "480p"  # which fitted polynomial ("480p" or "720p")
    use_ret_steps: bool = True  # official default: e0 as input, first 5 steps always computed
    coefficients: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not self.threshold >= 0:
            raise ValueError(f"TeaCache threshold must be >= 0, got {self.threshold!r}")
        if self.coefficients is None and (self.resolution, self.use_ret_steps) not in TEACACHE_COEFFICIENTS:
            known = sorted({r for r, _ in TEACACHE_COEFFICIENTS})
            raise ValueError(f"no TeaCache coefficients for resolution {self.resolution!r} (known: {known})")

    @property
    def polynomial(self) -> tuple[float, ...]:
        if self.coefficients is not None:
            return tuple(self.coefficients)
        return TEACACHE_COEFFICIENTS[(self.resolution, self.use_ret_steps)]


@dataclass
class _PassState:
    accumulated: float = 0.0
    previous: torch.Tensor | None = None  # modulated input of the previous evaluation
    residual: torch.Tensor | None = None  # (L, C) blocks output - blocks input of the last computed evaluation


@dataclass
class TeaCache:
    """Step-skipping state of one sampling run (one chunk)."""

    settings: TeaCacheSettings
    num_steps: int
    computed: int = 0  # pass evaluations that ran the blocks
    skipped: int = 0  # pass evaluations that reused a residual
    skipped_steps: list[int] = field(default_factory=list)  # step indices with at least one skipped pass
    _passes: dict[str, _PassState] = field(default_factory=dict, repr=False)
    _decisions: dict[tuple[int, str], bool] = field(default_factory=dict, repr=False)

    def always_computes(self, step: int) -> bool:
        """Steps that run the blocks whatever the distance (warm-up, and the last step without ret-steps)."""
        if self.settings.use_ret_steps:
            return step < RET_STEPS
        return step < 1 or step >= self.num_steps - 1

    def modulated_input(self, inputs: DiTInputs, index: int) -> torch.Tensor:
        """The tensor whose change is measured for sample `index`: e0 (6, C) with ret-steps, else e (C,)."""
        return inputs.e0[index] if self.settings.use_ret_steps else inputs.e[index]

    def decide(self, step: int, name: str, modulated: torch.Tensor) -> bool:
        """True: run the blocks for pass `name` at `step`; False: reuse its residual. Memoised per (step, name)."""
        key = (step, name)
        if key in self._decisions:
            return self._decisions[key]
        state = self._passes.setdefault(name, _PassState())
        if self.always_computes(step) or state.previous is None:
            compute = True
            state.accumulated = 0.0
        else:
            state.accumulated += polynomial(self.settings.polynomial, relative_l1(modulated, state.previous))
            compute = state.accumulated >= self.settings.threshold
            if compute:
                state.accumulated = 0.0
        state.previous = modulated.detach().clone()
        self._decisions[key] = compute
        if compute:
            self.computed += 1
        else:
            self.skipped += 1
            if not self.skipped_steps or self.skipped_steps[-1] != step:
                self.skipped_steps.append(step)
        return compute

    def residual(self, name: str) -> torch.Tensor:
        state = self._passes.get(name)
        if state is None or state.residual is None:
            raise RuntimeError(f"TeaCache has no residual for pass {name!r} yet")
        return state.residual

    def store(self, name: str, residual: torch.Tensor) -> None:
        self._passes.setdefault(name, _PassState()).residual = residual.detach()


def cached_forward(
    model: MultiTalkDiT,
    prepare: Callable[[Sequence[int]], DiTInputs],
    names: Sequence[str],
    step: int,
    cache: TeaCache | None,
) -> torch.Tensor:
    """One batched DiT evaluation of the passes `names` at sampling step `step`, skipping blocks where allowed.

    `prepare(indices)` returns `model.prepare(...)` for those samples of the batch (all of them first; a
    subset only when some passes compute and others skip). Without a cache this is `model.forward`.

    Returns:
        (len(names), C, F, H, W) float32.
    """
    inputs = prepare(range(len(names)))
    if cache is None:
        return model.finish(inputs, model.run_blocks(inputs))
    compute = [cache.decide(step, name, cache.modulated_input(inputs, i)) for i, name in enumerate(names)]
    if all(compute):
        x = model.run_blocks(inputs)
        for i, name in enumerate(names):
            cache.store(name, x[i] - inputs.x[i])
        return model.finish(inputs, x)
    residuals = [None if c else cache.residual(name) for c, name in zip(compute, names, strict=True)]
    x = inputs.x.clone()
    run = [i for i, c in enumerate(compute) if c]
    if run:  # mixed decisions: only the computing passes go through the blocks
        sub = prepare(run)
        blocks_out = model.run_blocks(sub)
        for j, i in enumerate(run):
            residual = blocks_out[j] - sub.x[j]
            cache.store(names[i], residual)
            x[i] = blocks_out[j]
    for i, residual in enumerate(residuals):
        if residual is not None:
            x[i] = inputs.x[i] + residual
    logger.debug("TeaCache step %d: computed %s", step, [n for n, c in zip(names, compute, strict=True) if c])
    return model.finish(inputs, x)
