"""The MultiTalk generation pipeline: load the official weights once per device, render chunk after chunk.

`MultiTalkPipeline` holds the DiT, VAE, umT5, CLIP and wav2vec2 models of one release on one device and turns
(scene, chunk, the chunk's audio window, the previous chunk's carried state) into that chunk's frames, one
uint8 (H, W, 3) frame at a time. Per chunk (as the official code does):

1. text: the prompt and the negative prompt through umT5 (cached per scene; umT5 lives on the host and visits
   the device to encode, or encodes on the CPU with `offload: t5`);
2. condition: the first chunk encodes the bucket-fitted reference image + zero frames with the VAE and marks
   latent frame 0 in the mask; a later chunk encodes the previous chunk's last `motion_frames` decoded,
   colour-corrected frames + zero frames and marks latent frames 0..T_m-1; the first T_m latent frames of that
   encoding are the motion latent. CLIP sees the condition's last frame: the reference image for the first
   chunk and, following the official code, the last generated frame for later ones;
3. speaker masks from the cast placement (`build_person_masks`), on the latent grid;
4. audio: wav2vec2 features of the chunk's own audio window (`chunk_audio_features`), windowed t-2..t+2;
5. sampling: `sampler.sample` with the chunk's generator `chunk_generator(scene seed, chunk index)` for the
   initial noise and every motion re-noising; 3 guidance passes (2 when the text scale is 1, 1 when both scales
   are 1), all passes of a step in one batched forward unless `RuntimeOptions.batch_passes` says otherwise,
   optional APG and TeaCache;
6. decode: `WanVAE.decode_stream`, colour correction towards the reference image, frames handed out one by
   one; the last `motion_frames` frames are written to the chunk's carry folder.

**Ours**, deliberately unlike the official streaming loop:
- the chunk plan is the spine's (`streaming.plan_chunks`): exactly as many frames as the scene has, no cap, and
  audio past the end of a track is silence (no reflection padding);
- nothing accumulates across chunks: the carried state is the last motion frames, saved (float16) with the
  chunk in `carry_out`, and a later chunk reads it back from disk. So every chunk, resumed or not, starts from
  the same bytes and a resumed render equals an uninterrupted one bit for bit on the CPU. float16 keeps
  2^-11 resolution in [-1, 1], 16x finer than one uint8 step of the delivered video;
- audio features are computed per chunk from the chunk's window plus a fixed margin (never from the whole
  track), so a chunk depends only on what its cache key covers (`audio_margin_frames` = feature margin + 2);
- the reference image's colour statistics are recomputed from the scene image, not carried.

Loudness: the conditioning tracks are expected to be loudness-normalised already (the audio stage does it once
per track); features are never re-normalised per window.

References:
- MeiGen-AI/MultiTalk `wan/multitalk.py` (`MultiTalkPipeline.generate`), `generate_multitalk.py`.
- Wan-Video/Wan2.1 `wan/image2video.py` (one task class loads the components once, generates many times).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from multitalk.generation.block_swap import BlockSwap
from multitalk.generation.runtime import RuntimeOptions, compile_blocks
from multitalk.generation.sampler import (
    APG,
    Guidance,
    GuidancePass,
    Step,
    chunk_generator,
    condition_mask,
    draw_noise,
    motion_latent_frames,
    sample,
    timesteps,
)
from multitalk.generation.streaming import Chunk
from multitalk.generation.teacache import TeaCache, TeaCacheSettings, cached_forward
from multitalk.model.attention import resolve_backend, select_backend
from multitalk.model.buckets import choose_bucket, fit_image_to_bucket
from multitalk.model.checkpoint import (
    README_POINTER,
    MissingWeightsError,
    WeightsError,
    build_on_meta,
    load_pth_checkpoint,
)
from multitalk.model.clip import ClipImageEncoder
from multitalk.model.color import match_color
from multitalk.model.configs import ModelConfig, get_config
from multitalk.model.dit import DiTInputs, MultiTalkDiT
from multitalk.model.dtype_policy import DTYPE_POLICIES, DtypePolicy
from multitalk.model.lora import LoraSpec, merge_loras
from multitalk.model.masks import Placement, build_person_masks
from multitalk.model.quantize import quantize_blocks
from multitalk.model.release import WeightsLayout, load_dit_weights, resolve_weights
from multitalk.model.t5 import DEFAULT_NEGATIVE_PROMPT, T5TextEncoder, build_umt5_encoder, load_tokenizer
from multitalk.model.vae import WanVAE
from multitalk.model.wav2vec import features_for_frames, load_wav2vec, window_features
from multitalk.timing import SAMPLES_PER_FRAME

logger = logging.getLogger(__name__)

CARRY_TENSORS = "motion.safetensors"
CARRY_META = "carry.json"
CARRY_VERSION = 1
CARRY_DTYPE = torch.float16
TEXT_CACHE_SIZE = 4
SCENE_CACHE_SIZE = 2


# --------------------------------------------------------------------------------------------------------
# Settings and inputs


@dataclass(frozen=True)
class SamplingSettings:
    """Sampling options; field names are the screenplay's `defaults.sampling` keys (official defaults)."""

    steps: int = 40
    shift: float | None = None  # None: the config's default for the resolution (7 at 480p, 11 at 720p)
    text_guidance: float = 5.0  # 1.0 switches to the 2-pass mode (distilled LoRAs)
    audio_guidance: float = 4.0
    color_correction: float = 1.0  # strength of the Lab colour transfer towards the reference (0 = off)
    apg: bool = False  # adaptive projected guidance (official CLI parameters)
    teacache: float | None = None  # TeaCache threshold; None = off
    negative_prompt: str | None = None  # None: the official default negative prompt

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"sampling.steps must be a positive integer, got {self.steps!r}")
        if self.shift is not None and not self.shift > 0:
            raise ValueError(f"sampling.shift must be > 0, got {self.shift!r}")
        for name in ("text_guidance", "audio_guidance"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"sampling.{name} must be a number >= 0, got {value!r}")
        if not 0.0 <= self.color_correction <= 1.0:
            raise ValueError(f"sampling.color_correction must be in [0, 1], got {self.color_correction!r}")
        if self.teacache is not None and not self.teacache >= 0:
            raise ValueError(f"sampling.teacache must be >= 0 or null, got {self.teacache!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> SamplingSettings:
        """From a dict (the screenplay's `sampling`, a scene's `settings`); unknown keys are errors."""
        return cls().merged(values or {})

    def merged(self, overrides: Mapping[str, Any]) -> SamplingSettings:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown sampling setting(s) {unknown} (known: {', '.join(sorted(known))})")
        return dataclasses.replace(self, **dict(overrides))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def guidance(self) -> Guidance:
        return Guidance(self.text_guidance, self.audio_guidance, APG() if self.apg else None)


@dataclass(frozen=True)
class SceneSpec:
    """What the pipeline needs to know about a scene."""

    image: Path  # the reference image
    prompt: str
    placements: tuple[Placement, ...]  # per person: "left", "right", a box [x0, y0, x1, y1] or None (alone)
    names: tuple[str, ...] = ()  # character names, for error messages
    resolution: str = "480p"
    seed: int = 42
    negative_prompt: str | None = None  # None: the sampling settings' one, then the official default

    def __post_init__(self) -> None:
        if len(self.placements) not in (1, 2):
            names = f" ({', '.join(self.names)})" if self.names else ""
            raise ValueError(
                f"MultiTalk renders one or two people per shot, got {len(self.placements)} on-screen persons{names}"
            )


@dataclass(frozen=True)
class ChunkAudio:
    """Each person's 16 kHz samples of frames [start_frame, start_frame + len/640), zeros outside the track."""

    windows: tuple[np.ndarray, ...]
    start_frame: int  # global frame of the first sample; negative before the scene start

    @property
    def end_frame(self) -> int:
        return self.start_frame + len(self.windows[0]) // SAMPLES_PER_FRAME


@dataclass
class ChunkReport:
    """What happened while rendering one chunk (for logs, tests and benches)."""

    chunk_index: int
    steps: int
    passes: tuple[str, ...]
    latent: torch.Tensor | None = field(default=None, repr=False)  # (16, F_lat, h, w) final latent, CPU fp32
    teacache_computed: int = 0
    teacache_skipped: int = 0
    teacache_skipped_steps: tuple[int, ...] = ()
    forwards: int = 0  # DiT forward calls (a batched step counts once)


@dataclass
class ChunkConditions:
    """Everything the DiT takes for one chunk, on the pipeline's device."""

    context: torch.Tensor  # (L, text_dim) prompt tokens
    context_null: torch.Tensor  # (L', text_dim) negative-prompt tokens
    clip_fea: torch.Tensor  # (1, clip_tokens, clip_dim)
    y: torch.Tensor  # (1, 4 + z, F_lat, h, w) mask channels + condition latent
    audio: torch.Tensor  # (P, frame_num, window, layers, C)
    masks: torch.Tensor  # (3, h, w) person masks on the latent grid
    motion: torch.Tensor | None  # (z, T_m, h, w) fp32 motion latent (later chunks)
    reference: torch.Tensor  # (1, 3, 1, H, W) fp32 colour reference in [-1, 1]


def weights_root(explicit: str | Path | None = None) -> Path:
    """The weights folder given (screenplay `defaults.weights`, `--weights`; the CLI and flows also read
    `MULTITALK_WEIGHTS` and pass it here: the library reads no environment)."""
    if explicit:
        return Path(explicit).expanduser()
    raise MissingWeightsError(
        "no weights folder given for the multitalk renderer: set `defaults.weights` in the screenplay, pass "
        f"--weights, or set MULTITALK_WEIGHTS for the multitalk command; {README_POINTER}"
    )


def default_dtype_policy(device: torch.device | str) -> DtypePolicy:
    """The official dtypes on a GPU (DiT bf16, T5 bf16, CLIP fp16, VAE / wav2vec fp32), fp32 on the CPU."""
    return DTYPE_POLICIES["official" if torch.device(device).type == "cuda" else "fp32"]


def resolve_dtype_policy(policy: str | DtypePolicy | None, device: torch.device | str) -> DtypePolicy:
    if policy is None:
        return default_dtype_policy(device)
    if isinstance(policy, DtypePolicy):
        return policy
    if policy not in DTYPE_POLICIES:
        raise ValueError(f"unknown dtype policy {policy!r} (known: {', '.join(DTYPE_POLICIES)})")
    return DTYPE_POLICIES[policy]


# --------------------------------------------------------------------------------------------------------
# Audio features of one chunk


def chunk_audio_features(
    model: Any,
    audio: np.ndarray,
    audio_start_frame: int,
    chunk_start: int,
    frame_num: int,
    margin_frames: int,
    window: int = 5,
) -> torch.Tensor:
    """Windowed wav2vec2 features of one chunk from that chunk's audio window alone.

    `audio` holds 16 kHz samples of global frames [audio_start_frame, ...), zeros past the track end and
    before the scene start (as `streaming.audio_window` cuts them). Frame t of the chunk takes feature frames
    t-2..t+2, clamped at the scene start as officially; frames past the track end are features of silence.
    The features of frames [chunk_start - 2, chunk_start + frame_num + 2) come from
    `wav2vec.features_for_frames` with `margin_frames` of context a side, so exactly the samples of frames
    [chunk_start - 2 - margin, chunk_start + frame_num + 2 + margin) (clamped at 0) are read.

    Returns:
        (frame_num, window, layers, hidden) float32.
    """
    half = window // 2
    first_needed = max(chunk_start - half - margin_frames, 0)  # the track starts at frame 0
    end_needed = chunk_start + frame_num + half + margin_frames
    audio_end = audio_start_frame + len(audio) // SAMPLES_PER_FRAME
    if audio_start_frame > first_needed or audio_end < end_needed:
        raise ValueError(
            f"chunk at frame {chunk_start} needs audio frames [{first_needed}, {end_needed}) "
            f"(margin {margin_frames} + window {half}), got [{audio_start_frame}, {audio_end})"
        )
    lo = (first_needed - audio_start_frame) * SAMPLES_PER_FRAME
    hi = (end_needed - audio_start_frame) * SAMPLES_PER_FRAME
    track = np.asarray(audio[lo:hi], dtype=np.float32)  # global frames [first_needed, end_needed)
    feat_start = max(chunk_start - half, 0)
    feat_end = chunk_start + frame_num + half
    feats = features_for_frames(
        model, track, feat_start - first_needed, feat_end - first_needed, margin_frames
    )  # (feat_end - feat_start, layers, hidden)
    return window_features(feats, chunk_start - feat_start, frame_num, window)  # (frame_num, window, L, C)


# --------------------------------------------------------------------------------------------------------
# Carried state


def write_carry(folder: Path, motion_frames: torch.Tensor, chunk_index: int) -> None:
    """Save the last decoded (colour-corrected) frames (1, 3, M, H, W) in [-1, 1] as the chunk's carry."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frames = motion_frames.detach().to(device="cpu", dtype=CARRY_DTYPE).contiguous()
    save_file({"motion_frames": frames}, str(folder / CARRY_TENSORS))
    _, _, m, h, w = frames.shape
    meta = {"version": CARRY_VERSION, "chunk_index": chunk_index, "motion_frames": m, "height": h, "width": w}
    (folder / CARRY_META).write_text(json.dumps(meta, sort_keys=True))


def read_carry(folder: Path, motion_frames: int, frame_hw: tuple[int, int]) -> torch.Tensor:
    """The previous chunk's motion frames (1, 3, M, H, W) float32, checked against what this chunk expects."""
    folder = Path(folder)
    meta_path, tensors_path = folder / CARRY_META, folder / CARRY_TENSORS
    if not meta_path.is_file() or not tensors_path.is_file():
        raise FileNotFoundError(
            f"carried state of the previous chunk not found in {folder} (expected {CARRY_META} and "
            f"{CARRY_TENSORS}); re-render the previous chunk"
        )
    meta = json.loads(meta_path.read_text())
    expected = {"version": CARRY_VERSION, "motion_frames": motion_frames, "height": frame_hw[0], "width": frame_hw[1]}
    wrong = {k: meta.get(k) for k, v in expected.items() if meta.get(k) != v}
    if wrong:
        raise ValueError(f"carried state in {folder} does not fit this chunk: has {wrong}, expected {expected}")
    frames = load_file(str(tensors_path))["motion_frames"]
    if tuple(frames.shape) != (1, 3, motion_frames, *frame_hw):
        raise ValueError(f"carried motion frames in {folder} have shape {list(frames.shape)}")
    return frames.float()


def to_uint8(frame: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8, truncating like the official video writer."""
    pixels = ((frame.float().clamp(-1.0, 1.0) + 1.0) / 2.0 * 255.0).to(torch.uint8)  # (3, H, W)
    return pixels.permute(1, 2, 0).cpu().numpy()


# --------------------------------------------------------------------------------------------------------
# The denoiser handed to the sampler


class OutOfMemoryError(RuntimeError):
    """The chosen memory mode does not fit the GPU; the message says which lighter modes exist."""


class _Denoiser:
    """Runs the DiT for the guidance passes of a step, batched or one pass at a time, with optional TeaCache."""

    def __init__(
        self,
        dit: MultiTalkDiT,
        cond: ChunkConditions,
        teacache: TeaCache | None,
        batch: bool,
    ) -> None:
        self.dit = dit
        self.cond = cond
        self.teacache = teacache
        self.batch = batch
        self.forwards = 0
        dev = cond.audio.device
        self.zero_audio = torch.zeros((1, *cond.audio.shape[1:]), dtype=cond.audio.dtype, device=dev)

    def _prepare(self, latent: torch.Tensor, step: Step, passes: Sequence[GuidancePass]) -> DiTInputs:
        c = self.cond
        x = latent[None].expand(len(passes), *latent.shape)  # (n, C, F, H, W)
        contexts = [c.context_null if p.negative_prompt else c.context for p in passes]
        audio = [c.audio if p.audio else self.zero_audio for p in passes]
        return self.dit.prepare(x, step.t, contexts, c.clip_fea, c.y, audio, c.masks)

    def _run(self, latent: torch.Tensor, step: Step, passes: Sequence[GuidancePass]) -> torch.Tensor:
        self.forwards += 1
        names = [p.name for p in passes]

        def prepare(indices: Sequence[int]) -> DiTInputs:
            return self._prepare(latent, step, [passes[i] for i in indices])

        return cached_forward(self.dit, prepare, names, step.index, self.teacache)

    def __call__(self, latent: torch.Tensor, step: Step, passes: Sequence[GuidancePass]) -> torch.Tensor:
        with torch.no_grad():
            try:
                if self.batch and len(passes) > 1:
                    return self._run(latent, step, passes)
                return torch.cat([self._run(latent, step, [p]) for p in passes])
            except torch.cuda.OutOfMemoryError as error:
                how = f"{len(passes)} batched passes" if self.batch and len(passes) > 1 else "one pass at a time"
                raise OutOfMemoryError(
                    f"the GPU ran out of memory in a DiT forward ({how}); choose a lighter mode and render again: "
                    "sequential passes, `offload: t5`, `offload: blocks` (with fewer `resident_blocks`), "
                    "`quantize: fp8`, or see `multitalk plan` for what fits this card"
                ) from error


# --------------------------------------------------------------------------------------------------------
# The pipeline


@dataclass
class _SceneState:
    reference: torch.Tensor  # (1, 3, 1, H, W) fp32 in [-1, 1] on the device
    masks: torch.Tensor  # (3, h, w) latent-grid person masks on the device
    target_hw: tuple[int, int]


def load_dit(
    config: ModelConfig,
    layout: WeightsLayout,
    dtypes: DtypePolicy,
    device: torch.device,
    loras: Sequence[LoraSpec] = (),
    runtime: RuntimeOptions | None = None,
    read_weights: Callable[[MultiTalkDiT, torch.device], MultiTalkDiT] | None = None,
) -> tuple[MultiTalkDiT, BlockSwap | None]:
    """The DiT with its LoRAs merged, quantised and placed as the runtime options say, and its block swap if any.

    With quantisation or block swap the bf16 weights are loaded on the host and go to the device one block at a
    time (quantised there, or swapped), so the full bf16 DiT never sits on the device. Module-level so that the
    ranks of a device group (multitalk.distributed) load their DiT exactly as the pipeline does. `read_weights`
    fills the meta-built DiT (default: the MultiTalk release's files; InfiniteTalk passes its adapter reader).
    """
    rt, dev = runtime or RuntimeOptions(), device
    staged = dev.type != "cpu" and (rt.quantize != "none" or rt.blocks_on_gpu is not None)
    home = torch.device("cpu") if staged else dev
    meta = build_on_meta(lambda: MultiTalkDiT(config.dit))
    if read_weights is None:
        dit = load_dit_weights(meta, layout, dtype=dtypes.dit, device=home)
    else:
        dit = read_weights(meta, home)
    merge_loras(dit, loras)
    dit.eval().requires_grad_(False)
    resident = rt.blocks_on_gpu
    for name, child in dit.named_children():  # everything but the blocks is small: it stays on the device
        if name != "blocks":
            child.to(dev)
    for name, param in dit.named_parameters(recurse=False):
        dit._parameters[name] = torch.nn.Parameter(param.to(dev), requires_grad=False)
    if rt.quantize != "none":
        quantize_blocks(dit.blocks, rt.quantize, dev, keep=None if resident is None else range(resident))
    block_swap = None
    if resident is not None:
        block_swap = BlockSwap(dit.blocks, resident, dev)
    else:
        dit.blocks.to(dev)
    if rt.compile:
        compile_blocks(dit.blocks)
    return dit, block_swap


class MultiTalkPipeline:
    """The MultiTalk models of one release on one device; renders any number of chunks of any scenes.

    Args:
        weights: the weights root (or a resolved `WeightsLayout`); a missing file raises `MissingWeightsError`
            listing every missing file and naming the README section "Official weights".
        config: a `ModelConfig` or its registry name ("multitalk-14b", "tiny").
        device: where the models run.
        dtype_policy: "official", "fp32" or a `DtypePolicy`; default official on CUDA, fp32 on the CPU.
        runtime: quantisation, memory mode, attention kernel, compilation and pass batching (`runtime.py`).
        loras: LoRAs merged into the DiT after loading (before quantisation).
    """

    def __init__(
        self,
        weights: str | Path | WeightsLayout,
        config: str | ModelConfig = "multitalk-14b",
        *,
        device: str | torch.device = "cpu",
        dtype_policy: str | DtypePolicy | None = None,
        runtime: RuntimeOptions | None = None,
        loras: Sequence[LoraSpec] = (),
    ) -> None:
        self.config = get_config(config)
        self.device = torch.device(device)
        self.dtypes = resolve_dtype_policy(dtype_policy, self.device)
        self.layout = weights if isinstance(weights, WeightsLayout) else resolve_weights(Path(weights))
        self.loras = tuple(loras)
        self.runtime = runtime or RuntimeOptions()
        self.attention = resolve_backend(self.runtime.attention, self.device)  # chosen once, checked up front
        self.t5_home = torch.device("cpu")  # umT5 lives on the host ...
        self.t5_visits = self.device.type != "cpu" and not self.runtime.t5_on_cpu  # ... and visits the device
        self.block_swap: BlockSwap | None = None
        self._text_cache: OrderedDict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._text_scene: tuple | None = None  # the scene whose prompts `_scene_texts` holds
        self._scene_texts: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self._scene_cache: OrderedDict[tuple, _SceneState] = OrderedDict()
        self.last_report: ChunkReport | None = None
        # Multi-device hook (multitalk.distributed.scene_worker): samples a chunk's latent over a process group,
        # with `sample_latent`'s signature; None: `sample_latent` on this device.
        self.latent_sampler: Callable[..., torch.Tensor] | None = None
        self._load()

    # -- loading ----------------------------------------------------------------------------------------

    def _load(self) -> None:
        cfg, layout, dt, dev = self.config, self.layout, self.dtypes, self.device
        self._check_dit_config()
        self.dit = self._load_dit()
        self.vae = load_pth_checkpoint(build_on_meta(lambda: WanVAE(cfg.vae)), layout.vae, dtype=dt.vae, device=dev)
        self.vae.eval().requires_grad_(False)
        self.text_encoder = T5TextEncoder(
            build_umt5_encoder(cfg.t5, layout.t5, dtype=dt.t5, device=self.t5_home),
            load_tokenizer(layout.t5_tokenizer),
            text_len=cfg.text_len,
        )
        self.clip = ClipImageEncoder.from_pretrained(layout.clip, cfg.clip, dtype=dt.clip, device=dev)
        self.wav2vec = load_wav2vec(layout.wav2vec_dir, dev)
        wav_cfg = self.wav2vec.config
        if (wav_cfg.num_hidden_layers, wav_cfg.hidden_size) != (cfg.dit.audio_blocks, cfg.dit.audio_channels):
            raise WeightsError(
                f"{layout.wav2vec_dir}: wav2vec2 has {wav_cfg.num_hidden_layers} layers x {wav_cfg.hidden_size}, "
                f"model config {cfg.name!r} expects {cfg.dit.audio_blocks} x {cfg.dit.audio_channels}"
            )
        logger.info(
            "MultiTalk pipeline %s loaded on %s (%s layout under %s, DiT %s)",
            cfg.name,
            dev,
            layout.kind,
            layout.root,
            dt.dit,
        )

    def _read_dit_weights(self, meta: MultiTalkDiT, home: torch.device) -> MultiTalkDiT:
        """Fill the meta-built DiT from the release's files (InfiniteTalk reads another adapter: it overrides this)."""
        return load_dit_weights(meta, self.layout, dtype=self.dtypes.dit, device=home)

    def _load_dit(self) -> MultiTalkDiT:
        dit, self.block_swap = load_dit(
            self.config, self.layout, self.dtypes, self.device, self.loras, self.runtime, self._read_dit_weights
        )
        return dit

    def _check_dit_config(self) -> None:
        """The release's DiT `config.json` must describe the model config we build."""
        try:
            found = json.loads(self.layout.dit_config.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise WeightsError(f"{self.layout.dit_config}: unreadable DiT config ({e}); re-download it") from e
        d = self.config.dit
        expected = {
            "dim": d.dim,
            "ffn_dim": d.ffn_dim,
            "freq_dim": d.freq_dim,
            "in_dim": d.in_dim,
            "num_heads": d.num_heads,
            "num_layers": d.num_layers,
            "out_dim": d.out_dim,
            "text_len": d.text_len,
        }
        wrong = {k: found[k] for k, v in expected.items() if k in found and found[k] != v}
        if wrong:
            raise WeightsError(
                f"{self.layout.dit_config} describes a different DiT ({wrong}) than model config "
                f"{self.config.name!r} ({ {k: expected[k] for k in wrong} }); pick the matching config"
            )

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the release files (LoRAs are named separately in `identity`)."""
        return self.layout.fingerprint()

    @property
    def audio_margin_frames(self) -> int:
        """Audio frames each side of a chunk its frames depend on: feature margin + half the t-2..t+2 window."""
        return self.config.audio_feature_margin + self.config.audio_window // 2

    # -- per-scene conditions ---------------------------------------------------------------------------

    def encode_text(self, prompt: str, negative_prompt: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(prompt tokens, negative-prompt tokens) on the device; cached for the last few prompt pairs."""
        negative = negative_prompt or DEFAULT_NEGATIVE_PROMPT
        key = (prompt, negative)
        if key in self._text_cache:
            self._text_cache.move_to_end(key)
            return self._text_cache[key]
        model = self.text_encoder.model
        if self.t5_visits:
            model.to(self.device)
        try:
            context, context_null = self.text_encoder([prompt, negative])
        finally:
            if self.t5_visits:
                model.to(self.t5_home)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()  # give the visit's memory back before the DiT runs
        entry = (context.to(self.device), context_null.to(self.device))
        self._text_cache[key] = entry
        while len(self._text_cache) > TEXT_CACHE_SIZE:
            self._text_cache.popitem(last=False)
        return entry

    def scene_text(self, spec: SceneSpec, negative_prompt: str | None) -> tuple[torch.Tensor, torch.Tensor]:
        """`encode_text` for a chunk, keeping every prompt of the current scene: chunks change prompts with the
        lines' actions (A, B, A, C...), and each distinct one is encoded once per scene however many there are."""
        scene = (str(spec.image), spec.placements, spec.names, spec.resolution)
        if self._text_scene != scene:
            self._text_scene, self._scene_texts = scene, {}
        key = (spec.prompt, negative_prompt or DEFAULT_NEGATIVE_PROMPT)
        if key not in self._scene_texts:
            self._scene_texts[key] = self.encode_text(spec.prompt, negative_prompt)
        return self._scene_texts[key]

    def frame_hw(self, image_hw: tuple[int, int], resolution: str) -> tuple[int, int]:
        """(height, width) of the frames for a reference image of `image_hw` at `resolution`."""
        return choose_bucket(image_hw[0], image_hw[1], self.config.bucket_table(resolution))

    def _scene(self, spec: SceneSpec) -> _SceneState:
        path = Path(spec.image)
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size, spec.placements, spec.names, spec.resolution)
        if key in self._scene_cache:
            self._scene_cache.move_to_end(key)
            return self._scene_cache[key]
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        image_hw = (image.height, image.width)
        target_hw = self.frame_hw(image_hw, spec.resolution)
        reference = fit_image_to_bucket(image, target_hw)[:, None][None].to(self.device)  # (1, 3, 1, H, W)
        masks = build_person_masks(
            image_hw,
            list(spec.placements),
            target_hw,
            names=list(spec.names) or None,
            vae_stride=self.config.vae.spatial_factor,
            patch=self.config.dit.patch_size[1],
        ).latent.to(self.device)  # (3, h, w)
        state = _SceneState(reference, masks, target_hw)
        self._scene_cache[key] = state
        while len(self._scene_cache) > SCENE_CACHE_SIZE:
            self._scene_cache.popitem(last=False)
        return state

    # -- per-chunk conditions ---------------------------------------------------------------------------

    def audio_features(self, audio: ChunkAudio, chunk: Chunk) -> torch.Tensor:
        """(P, frame_num, window, layers, C) windowed features of every person for `chunk`."""
        per_person = [
            chunk_audio_features(
                self.wav2vec,
                window,
                audio.start_frame,
                chunk.start,
                chunk.frames,
                self.config.audio_feature_margin,
                self.config.audio_window,
            )
            for window in audio.windows
        ]
        return torch.stack(per_person)

    @torch.no_grad()
    def conditions(
        self, spec: SceneSpec, chunk: Chunk, audio: ChunkAudio, previous: Path | None, settings: SamplingSettings
    ) -> ChunkConditions:
        """Text, image, condition latent, masks and audio for one chunk."""
        cfg = self.config
        if chunk.frames != cfg.geometry.frame_num:
            raise ValueError(f"chunk {chunk.index} has {chunk.frames} frames, the model makes {cfg.geometry.frame_num}")
        if len(audio.windows) != len(spec.placements):
            raise ValueError(f"got audio for {len(audio.windows)} persons, the scene has {len(spec.placements)}")
        scene = self._scene(spec)
        negative = spec.negative_prompt or settings.negative_prompt
        context, context_null = self.scene_text(spec, negative)

        if chunk.motion_frames == 0:
            cond_frames = scene.reference  # (1, 3, 1, H, W)
        else:
            if previous is None:
                raise ValueError(f"chunk {chunk.index} continues chunk {chunk.index - 1}: its carried state is needed")
            cond_frames = read_carry(previous, chunk.motion_frames, scene.target_hw).to(self.device)
        n_cond = cond_frames.shape[2]
        # Official: CLIP sees the condition's last frame (the reference image, later the last generated frame).
        clip_fea = self.clip(cond_frames[:, :, -1])  # (1, clip_tokens, clip_dim)
        zeros = cond_frames.new_zeros(1, 3, cfg.geometry.frame_num - n_cond, *scene.target_hw)
        y_latent = self.vae.encode(torch.cat([cond_frames, zeros], dim=2))  # (1, z, F_lat, h, w) fp32
        y_latent = y_latent.to(self.dtypes.dit)  # official: the condition is cast to the DiT dtype
        motion = None
        if chunk.motion_frames:
            t_m = motion_latent_frames(n_cond, cfg.vae.temporal_factor)
            motion = y_latent[0, :, :t_m].float()  # (z, T_m, h, w)
        mask = condition_mask(cfg.geometry.frame_num, n_cond, cfg.vae.temporal_factor)  # (4, F_lat)
        mask = mask[None, :, :, None, None].expand(1, -1, -1, *y_latent.shape[3:]).to(y_latent)
        y = torch.cat([mask, y_latent], dim=1)  # (1, 4 + z, F_lat, h, w)
        features = self.audio_features(audio, chunk).to(self.device)  # (P, frame_num, window, L, C)
        return ChunkConditions(
            context=context,
            context_null=context_null,
            clip_fea=clip_fea,
            y=y,
            audio=features.to(self.dtypes.dit),
            masks=scene.masks,
            motion=motion,
            reference=scene.reference,
        )

    # -- sampling and decoding --------------------------------------------------------------------------

    def sample_latent(
        self,
        cond: ChunkConditions,
        seed: int,
        chunk_index: int,
        settings: SamplingSettings,
        resolution: str,
        on_step: Callable[[Step, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Sample one chunk's latent (z, F_lat, h, w) float32 with the chunk's own generator."""
        cfg = self.config
        generator = chunk_generator(seed, chunk_index)  # CPU: the same draws on every device
        _, _, f_lat, h, w = cond.y.shape
        noise = draw_noise((cfg.vae.z_dim, f_lat, h, w), generator).to(self.device)
        guidance = settings.guidance()
        shift = settings.shift if settings.shift is not None else cfg.shift_for(resolution)
        schedule = timesteps(settings.steps, shift)
        teacache = None
        if settings.teacache is not None:
            teacache = TeaCache(TeaCacheSettings(threshold=settings.teacache, resolution=resolution), settings.steps)

        select_backend(self.attention, self.device)
        denoise = _Denoiser(self.dit, cond, teacache, self.runtime.batch_passes)
        latent = self._sample(denoise, noise, guidance, schedule, cond, generator, on_step)
        self.last_report = ChunkReport(
            chunk_index=chunk_index,
            steps=settings.steps,
            passes=tuple(p.name for p in guidance.passes),
            latent=latent.detach().float().cpu(),
            teacache_computed=teacache.computed if teacache else 0,
            teacache_skipped=teacache.skipped if teacache else 0,
            teacache_skipped_steps=tuple(teacache.skipped_steps) if teacache else (),
            forwards=denoise.forwards,
        )
        return latent

    def _sample(
        self,
        denoise: _Denoiser,
        noise: torch.Tensor,
        guidance: Guidance,
        schedule: torch.Tensor,
        cond: ChunkConditions,
        generator: torch.Generator,
        on_step: Callable[[Step, torch.Tensor], None] | None,
    ) -> torch.Tensor:
        """The sampling loop: MultiTalk re-noises the motion latent (InfiniteTalk pins it clean: it overrides this)."""
        return sample(
            denoise,
            noise,
            guidance=guidance,
            schedule=schedule,
            motion=cond.motion,
            generator=generator,
            on_step=on_step,
        )

    @torch.no_grad()
    def decode(self, latent: torch.Tensor, reference: torch.Tensor, strength: float) -> Iterator[torch.Tensor]:
        """Decoded frames (3, H, W) fp32 in [-1, 1], colour-corrected towards `reference`, one at a time."""
        for block in self.vae.decode_stream(latent[None], tiles=self.runtime.vae_tiles):  # (1, 3, 1 or 4, H, W)
            if strength > 0:
                block = match_color(block, reference, strength)
            for i in range(block.shape[2]):
                yield block[0, :, i]

    def render_chunk(
        self,
        spec: SceneSpec,
        chunk: Chunk,
        audio: ChunkAudio,
        previous: Path | None,
        carry_out: Path,
        settings: SamplingSettings | None = None,
        on_step: Callable[[Step, torch.Tensor], None] | None = None,
    ) -> Iterator[np.ndarray]:
        """Yield the chunk's delivered frames (H, W, 3) uint8; write its carried state into `carry_out`.

        The carry (the last `motion_frames` decoded frames) is written after the last frame is decoded, before
        the generator finishes; consume the generator to the end.
        """
        settings = settings or SamplingSettings()
        cond = self.conditions(spec, chunk, audio, previous, settings)
        sampler = self.latent_sampler or self.sample_latent
        latent = sampler(cond, spec.seed, chunk.index, settings, spec.resolution, on_step)
        motion_frames = self.config.geometry.motion_frames
        keep: deque[torch.Tensor] = deque(maxlen=motion_frames)
        first, last = chunk.local_deliver
        count = 0
        for i, frame in enumerate(self.decode(latent, cond.reference, settings.color_correction)):
            keep.append(frame)
            if first <= i < last:
                yield to_uint8(frame)
            count += 1
        if count != chunk.frames:
            raise RuntimeError(f"the VAE decoded {count} frames for chunk {chunk.index}, expected {chunk.frames}")
        write_carry(carry_out, torch.stack(list(keep), dim=1)[None], chunk.index)  # (1, 3, M, H, W)
        logger.info(
            "chunk %d: %d frames delivered (%d steps, passes %s, TeaCache skipped %d)",
            chunk.index,
            max(0, last - first),
            settings.steps,
            ",".join(self.last_report.passes) if self.last_report else "?",
            self.last_report.teacache_skipped if self.last_report else 0,
        )
