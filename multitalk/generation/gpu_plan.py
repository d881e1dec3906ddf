"""`multitalk plan`: what a screenplay will cost on a named GPU before any rendering, from arithmetic alone.

Everything is derived from the model config: parameter counts from the model built on the meta device (no weights,
no memory), FLOPs per DiT forward from the token counts of a chunk (latent frames x latent grid / patch, the 512
text tokens, the 257 CLIP tokens and the audio tokens) and the shapes of the layers they pass through. Then:

- forwards per chunk = steps x guidance passes (3, 2, or 1 with guidance off), a batched step counted per pass
  because its FLOPs are;
- GPU time = forwards x FLOPs / (card's dense peak x assumed MFU), and with block swap at least the time to copy
  the swapped blocks over the card's host link once per forward (the copies overlap compute on a side stream);
- peak VRAM per memory mode = the weights resident on the card + the DiT activations of one batched forward + the
  VAE decode's working set (estimates, stated as such; `bench/gpu_dit_step.py` measures the real ones).

Scene lengths come from the timeline rules with line durations estimated from the text (recorded lines: their
real duration), so chunk counts are estimates until the voices exist. TeaCache skips are not counted.

Card figures are the vendors' dense (no-sparsity) tensor throughput and memory: NVIDIA H200, H100 SXM, A100 and
L40S datasheets, GeForce RTX 4090 / 3090 (bf16 with fp32 accumulation) whitepapers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from multitalk.model.configs import ModelConfig
from multitalk.model.dit import MultiTalkDiT

GiB = 2**30
ASSUMED_MFU = 0.45  # the bf16 DiT target of issue 11; a measured figure replaces it in bench/RESULTS.md
HEADROOM = 0.92  # of a card's memory usable by tensors (context, allocator fragmentation)
WORDS_PER_SECOND = 2.6  # speech rate of the TTS engines at speed 1, for line-duration estimates


@dataclass(frozen=True)
class GPUCard:
    """A GPU as the plan needs it."""

    name: str
    memory_gib: float
    bf16_tflops: float  # dense tensor-core peak
    fp8_tflops: float | None  # None: no fp8 tensor cores (fp8 weights are dequantised to bf16)
    host_link_gbs: float  # sustained host-to-device copy bandwidth (PCIe / NVLink-C2C), GB/s


CARDS: dict[str, GPUCard] = {
    card.name.lower(): card
    for card in (
        GPUCard("H200", 141e9 / GiB, 989.0, 1979.0, 55.0),
        GPUCard("H100", 80e9 / GiB, 989.0, 1979.0, 55.0),
        GPUCard("A100-80", 80e9 / GiB, 312.0, None, 25.0),
        GPUCard("A100-40", 40e9 / GiB, 312.0, None, 25.0),
        GPUCard("L40S", 48e9 / GiB, 362.0, 733.0, 25.0),
        GPUCard("4090", 24e9 / GiB, 165.0, 330.0, 25.0),
        GPUCard("3090", 24e9 / GiB, 71.0, None, 25.0),
    )
}


def card(name: str) -> GPUCard:
    key = name.lower().replace("_", "-")
    if key not in CARDS:
        raise ValueError(f"unknown GPU {name!r} (known: {', '.join(c.name for c in CARDS.values())})")
    return CARDS[key]


# --------------------------------------------------------------------------------------------------------
# Parameters and FLOPs from the config


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass(frozen=True)
class DiTSizes:
    """Parameter counts of the DiT, from the meta-device model."""

    total: int
    blocks: int  # all transformer blocks
    block_linear: int  # the linear layers inside the blocks (what quantisation changes)
    per_block: int


def dit_sizes(config: ModelConfig) -> DiTSizes:
    with torch.device("meta"):
        model = MultiTalkDiT(config.dit)
    linear = sum(_count(m) for m in model.blocks.modules() if isinstance(m, nn.Linear))
    return DiTSizes(_count(model), _count(model.blocks), linear, _count(model.blocks[0]))


def component_params(config: ModelConfig) -> dict[str, int]:
    """Parameter counts of every component (meta device: instant, no memory)."""
    from transformers import CLIPVisionModel, UMT5EncoderModel, Wav2Vec2Config, Wav2Vec2Model

    from multitalk.model.clip import clip_vision_config
    from multitalk.model.t5 import umt5_config
    from multitalk.model.vae import WanVAE

    with torch.device("meta"):
        counts = {
            "dit": _count(MultiTalkDiT(config.dit)),
            "t5": _count(UMT5EncoderModel(umt5_config(config.t5))),
            "clip": _count(CLIPVisionModel(clip_vision_config(config.clip, config.clip.num_layers - 1))),
            "vae": _count(WanVAE(config.vae)),
            "wav2vec": _count(Wav2Vec2Model(Wav2Vec2Config(**config.wav2vec.transformers_kwargs()))),
        }
    return counts


@dataclass(frozen=True)
class Tokens:
    """Token counts of one DiT forward (one sample)."""

    video: int  # L = latent frames x (h / patch) x (w / patch)
    frames: int  # latent frames
    text: int
    image: int
    audio_per_frame: int  # audio tokens each latent frame attends to (persons x context tokens)


def chunk_tokens(config: ModelConfig, frame_hw: tuple[int, int], persons: int) -> Tokens:
    stride = config.spatial_stride
    f = config.latent_frames
    grid = (frame_hw[0] // stride) * (frame_hw[1] // stride)
    return Tokens(f * grid, f, config.text_len, config.dit.clip_tokens, persons * config.dit.audio_context_tokens)


def dit_forward_flops(config: ModelConfig, tokens: Tokens) -> int:
    """Multiply-add FLOPs (x2) of one DiT forward of one sample: every linear and every attention product.

    Linear layers: 2 x (tokens through the layer) x (its weights), with the weights read from the meta-device
    blocks. Attention: 4 x Lq x Lk x dim (Q·K and P·V). Embeddings, the head and the audio projector are
    included; norms, RoPE and elementwise work (<1 %) are not.
    """
    with torch.device("meta"):
        model = MultiTalkDiT(config.dit)
    block = model.blocks[0]
    d, L = config.dit.dim, tokens.video
    audio_tokens = tokens.frames * tokens.audio_per_frame
    per_token = ("self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o", "cross_attn.q", "cross_attn.o")
    per_token += ("ffn.0", "ffn.2", "audio_cross_attn.q_linear", "audio_cross_attn.proj")
    modules = dict(block.named_modules())
    weights = {name: modules[name].weight.numel() for name in modules if isinstance(modules[name], nn.Linear)}
    linear = 2 * L * sum(weights[name] for name in per_token)
    linear += 2 * tokens.text * (weights["cross_attn.k"] + weights["cross_attn.v"])
    linear += 2 * tokens.image * (weights["cross_attn.k_img"] + weights["cross_attn.v_img"])
    linear += 2 * audio_tokens * weights["audio_cross_attn.kv_linear"]
    attention = 4 * d * L * (L + tokens.text + tokens.image + tokens.audio_per_frame)
    blocks = config.dit.num_layers * (linear + attention)
    outer = 2 * L * model.patch_embedding.weight.numel()  # a conv with stride = kernel: one kernel per token
    outer += 2 * tokens.text * sum(_count(m) for m in model.text_embedding if isinstance(m, nn.Linear))
    outer += 2 * tokens.image * sum(_count(m) for m in model.img_emb.modules() if isinstance(m, nn.Linear))
    outer += 2 * L * model.head.head.weight.numel()
    outer += 2 * tokens.frames * sum(m.weight.numel() for m in model.audio_proj.modules() if isinstance(m, nn.Linear))
    return int(blocks + outer)


def dit_forward_split(config: ModelConfig, tokens: Tokens) -> dict[str, int]:
    """FLOPs of one forward split into linear layers and attention products (the bench compares its timings)."""
    total = dit_forward_flops(config, tokens)
    d, L = config.dit.dim, tokens.video
    attention = config.dit.num_layers * 4 * d * L * (L + tokens.text + tokens.image + tokens.audio_per_frame)
    return {"linear": total - attention, "attention": attention}


# --------------------------------------------------------------------------------------------------------
# Memory and time


MODES = ("none", "t5", "blocks", "sequential")


@dataclass(frozen=True)
class MemoryEstimate:
    mode: str
    resident_blocks: int | None  # with block swap: the most blocks that fit (None: not block swap)
    peak_gib: float
    fits: bool


def _weights_bytes(params: dict[str, int], sizes: DiTSizes, quantize: str) -> dict[str, float]:
    dit = 2.0 * sizes.total if quantize == "none" else 2.0 * (sizes.total - sizes.block_linear) + sizes.block_linear
    return {
        "dit": dit,
        "t5": 2.0 * params["t5"],
        "clip": 2.0 * params["clip"],
        "vae": 4.0 * params["vae"],
        "wav2vec": 4.0 * params["wav2vec"],
    }


def activation_bytes(config: ModelConfig, tokens: Tokens, batch: int) -> float:
    """Working set of one batched DiT forward: the fp32 residual stream, q/k/v/out and the FFN hidden (bf16)."""
    d, ffn, L = config.dit.dim, config.dit.ffn_dim, tokens.video
    return batch * L * (4 * d + 2 * 5 * d + 2 * 2 * ffn)


def vae_decode_bytes(config: ModelConfig, frame_hw: tuple[int, int]) -> float:
    """The VAE's largest decode working set: ~3 live fp32 activations of its widest full-resolution stage."""
    h, w = frame_hw
    return 3 * 4 * config.vae.dim * config.vae.temporal_factor * h * w


def memory_modes(
    config: ModelConfig,
    gpu: GPUCard,
    frame_hw: tuple[int, int],
    persons: int,
    passes: int,
    quantize: str,
    batch_passes: bool = True,
) -> list[MemoryEstimate]:
    params, sizes = component_params(config), dit_sizes(config)
    weights = _weights_bytes(params, sizes, quantize)
    tokens = chunk_tokens(config, frame_hw, persons)
    work = activation_bytes(config, tokens, passes if batch_passes else 1) + vae_decode_bytes(config, frame_hw)
    small = weights["clip"] + weights["vae"] + weights["wav2vec"]
    block_bytes = weights["dit"] * sizes.per_block / sizes.total
    outside_blocks = weights["dit"] - block_bytes * config.dit.num_layers
    budget = gpu.memory_gib * GiB * HEADROOM
    out = []
    for mode in MODES:
        resident = None
        if mode == "none":  # umT5 visits beside the resident DiT
            peak = weights["dit"] + small + max(weights["t5"], work)
        elif mode == "t5":
            peak = weights["dit"] + small + work
        else:
            fixed = outside_blocks + small + 2 * block_bytes  # two swapped blocks in flight
            if mode == "sequential":
                resident = 0
            else:
                room = budget - fixed - max(work, weights["t5"])
                resident = max(0, min(config.dit.num_layers, int(room // block_bytes)))
            peak = fixed + resident * block_bytes + max(work, weights["t5"])  # umT5 visits alone
        out.append(MemoryEstimate(mode, resident, peak / GiB, peak <= budget))
    return out


@dataclass(frozen=True)
class ScenePlan:
    scene_id: str
    persons: int
    frames: int
    chunks: int
    forwards: int
    gpu_seconds: float


@dataclass
class Plan:
    gpu: GPUCard
    config: str
    frame_hw: tuple[int, int]
    steps: int
    passes: int
    quantize: str
    offload: str
    flops_per_forward: int
    params: dict[str, int]
    scenes: list[ScenePlan] = field(default_factory=list)
    memory: list[MemoryEstimate] = field(default_factory=list)

    @property
    def chunks(self) -> int:
        return sum(s.chunks for s in self.scenes)

    @property
    def forwards(self) -> int:
        return sum(s.forwards for s in self.scenes)

    @property
    def gpu_seconds(self) -> float:
        return sum(s.gpu_seconds for s in self.scenes)


def forward_seconds(config: ModelConfig, gpu: GPUCard, flops: int, quantize: str, swapped_blocks: int) -> float:
    """Estimated time of one single-pass DiT forward on `gpu`, including block-swap copies when they dominate."""
    peak = gpu.fp8_tflops if quantize == "fp8" and gpu.fp8_tflops else gpu.bf16_tflops
    compute = flops / (peak * 1e12 * ASSUMED_MFU)
    if not swapped_blocks:
        return compute
    sizes = dit_sizes(config)
    per_block = (2.0 if quantize == "none" else 1.1) * sizes.per_block
    return max(compute, swapped_blocks * per_block / (gpu.host_link_gbs * 1e9))


def estimate_frames(screenplay, scene) -> int:
    """Frames of a scene from its lines: recorded audio as it is, text at WORDS_PER_SECOND / speed."""
    from multitalk.media.probe import media_duration

    timing, fps = screenplay.defaults.timing, screenplay.defaults.fps
    t = 0.0
    for index, line in enumerate(scene.lines):
        if line.audio_path is not None:
            duration = media_duration(line.audio_path)
        else:
            speed = screenplay.characters[line.speaker].speed if line.speaker in screenplay.characters else 1.0
            duration = max(len((line.text or "").split()), 1) / (WORDS_PER_SECOND * speed)
        if line.start is not None:
            t = line.start
        elif line.overlap is not None:
            t -= line.overlap
        else:
            t += line.pause if line.pause is not None else (timing.lead_in if index == 0 else timing.gap)
        t += duration
    return max(1, math.ceil((t + timing.tail) * fps))


def plan_screenplay(
    screenplay,
    config: ModelConfig,
    gpu: GPUCard,
    *,
    frame_hw: tuple[int, int] | None = None,
    batch_passes: bool = True,
) -> Plan:
    """The plan of every scene of a loaded screenplay on `gpu` with the screenplay's model settings."""
    from multitalk.generation.pipeline import SamplingSettings
    from multitalk.generation.streaming import chunk_count
    from multitalk.screenplay.model_settings import scene_model

    resolution = screenplay.defaults.resolution
    table = config.bucket_table(resolution)
    hw = frame_hw or table.get("0.50", next(iter(table.values())))  # a landscape two-shot by default
    params = component_params(config)
    plan_scenes: list[ScenePlan] = []
    first = None
    for scene in screenplay.scenes:
        model = scene_model(screenplay.defaults.model, screenplay.defaults.sampling, scene.model)
        sampling = SamplingSettings.from_mapping(model.sampling)
        passes = len(sampling.guidance().passes)
        persons = max(1, min(2, len(scene.on_screen_speakers())))
        flops = dit_forward_flops(config, chunk_tokens(config, hw, persons))
        frames = estimate_frames(screenplay, scene)
        chunks = chunk_count(frames, config.geometry)
        forwards = chunks * sampling.steps * passes
        settings = model.settings
        swapped = 0
        if settings.offload in ("blocks", "sequential"):
            resident = 0 if settings.offload == "sequential" else (settings.resident_blocks or 10)
            swapped = max(0, config.dit.num_layers - resident)
        seconds = chunks * sampling.steps * passes * forward_seconds(config, gpu, flops, settings.quantize, swapped)
        plan_scenes.append(ScenePlan(scene.id, persons, frames, chunks, forwards, seconds))
        first = first or (sampling, settings, passes, flops, persons)
    sampling, settings, passes, flops, persons = first
    memory = memory_modes(config, gpu, hw, persons, passes, settings.quantize, batch_passes)
    return Plan(
        gpu,
        config.name,
        hw,
        sampling.steps,
        passes,
        settings.quantize,
        settings.offload,
        flops,
        params,
        plan_scenes,
        memory,
    )


def format_plan(plan: Plan) -> list[str]:
    """The plan as text lines (the CLI prints them)."""
    g = plan.gpu
    lines = [
        f"{plan.config} on {g.name} ({g.memory_gib:.0f} GiB, {g.bf16_tflops:.0f} bf16 TFLOP/s dense, MFU assumed "
        f"{ASSUMED_MFU:.0%}); {plan.frame_hw[1]}x{plan.frame_hw[0]}, {plan.steps} steps x {plan.passes} passes, "
        f"quantize {plan.quantize}, offload {plan.offload}",
        f"DiT {plan.params['dit'] / 1e9:.2f} B params, {plan.flops_per_forward / 1e15:.2f} PFLOP per forward "
        f"(umT5 {plan.params['t5'] / 1e9:.2f} B, CLIP {plan.params['clip'] / 1e9:.2f} B, "
        f"VAE {plan.params['vae'] / 1e6:.0f} M, wav2vec2 {plan.params['wav2vec'] / 1e6:.0f} M)",
        "",
        f"{'scene':<24}{'persons':>8}{'frames≈':>9}{'chunks':>8}{'forwards':>10}{'GPU time≈':>12}",
    ]
    for s in plan.scenes:
        lines.append(
            f"{s.scene_id:<24}{s.persons:>8}{s.frames:>9}{s.chunks:>8}{s.forwards:>10}{_duration(s.gpu_seconds):>12}"
        )
    lines.append(
        f"{'total':<24}{'':>8}{sum(s.frames for s in plan.scenes):>9}{plan.chunks:>8}{plan.forwards:>10}"
        f"{_duration(plan.gpu_seconds):>12}"
    )
    lines += ["", f"{'memory mode':<16}{'peak VRAM≈':>12}{'fits':>6}  note"]
    for m in plan.memory:
        note = f"{m.resident_blocks} of the DiT blocks resident" if m.mode == "blocks" else ""
        lines.append(f"{m.mode:<16}{m.peak_gib:>10.1f} G{('yes' if m.fits else 'no'):>6}  {note}")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
