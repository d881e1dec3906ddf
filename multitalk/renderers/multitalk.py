"""The `multitalk` renderer: the real model, chunk by chunk, behind the renderer protocol.

The spine (`multitalk.stages.chunk`) computes every chunk's key from `identity()`, the chunk plan, the raw
audio samples of each person's window (`audio_margin_frames` each side) and `chunk_key_material()`, then calls
`render_chunk(context, chunk, previous_carry, carry_out)`. Here that becomes one `MultiTalkPipeline.render_chunk`
call: the chunk's audio window is read from the tracks (only those samples), the previous chunk's motion frames
come from `previous_carry`, and this chunk's go to `carry_out`.

What a chunk's frames depend on, and where the key gets it:
- `identity()`: renderer version, model config name, weights fingerprint (release files and LoRAs), dtype
  policy, the renderer's default sampling settings;
- the spine: chunk plan, each person's audio samples of [start - margin, end + margin) with
  margin = wav2vec feature margin + 2 (the t-2..t+2 window), the previous chunk's key;
- `chunk_key_material()`: the reference image's content, the chunk's prompt (the scene prompt plus the actions of
  the lines the chunk delivers, `chunk_prompt.py`), effective negative prompt, persons and their placements in
  model order, resolution, seed and the effective sampling settings of the scene (a preset's values included),
  plus, only when they are not the defaults, the scene's LoRA fingerprints, quantisation, an approximate
  attention kernel and tiled VAE decode (`model_key_material`).

One pipeline is kept loaded per device between scenes (`pipeline_for`): a small cache keyed by (weights and
LoRA fingerprint, model config, device, dtype policy); asking for another key on the same device unloads the
previous one first.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from multitalk.devices import torch_device
from multitalk.generation.pipeline import (
    CARRY_DTYPE,
    ChunkAudio,
    MultiTalkPipeline,
    SamplingSettings,
    SceneSpec,
    resolve_dtype_policy,
    weights_root,
)
from multitalk.generation.runtime import RuntimeOptions
from multitalk.generation.streaming import Chunk
from multitalk.model.attention import APPROXIMATE as APPROXIMATE_ATTENTION
from multitalk.model.buckets import choose_bucket
from multitalk.model.checkpoint import MissingWeightsError
from multitalk.model.chunk_geometry import ChunkGeometry
from multitalk.model.configs import ModelConfig, get_config
from multitalk.model.dtype_policy import DtypePolicy
from multitalk.model.lora import LoraSpec
from multitalk.model.masks import Placement
from multitalk.model.release import COMPONENTS, WeightsLayout, resolve_weights
from multitalk.model.vae_tiling import VAETiles
from multitalk.renderers.base import Person, SceneContext
from multitalk.renderers.chunk_prompt import chunk_prompt
from multitalk.screenplay.model_settings import ModelSettings
from multitalk.store.keys import file_digest

logger = logging.getLogger(__name__)

VERSION = "multitalk-1"

_PIPELINES: dict[str, tuple[tuple, MultiTalkPipeline]] = {}  # device slot -> (key, pipeline)
_SLOT_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _slot_lock(slot: str) -> threading.Lock:
    with _LOCKS_LOCK:
        return _SLOT_LOCKS.setdefault(slot, threading.Lock())


def pipeline_for(
    layout: WeightsLayout,
    config: ModelConfig,
    slot: str,
    dtype_policy: DtypePolicy,
    loras: Sequence[LoraSpec] = (),
    *,
    fingerprint: str | None = None,
    pipeline_class: type[MultiTalkPipeline] = MultiTalkPipeline,
    **options: Any,
) -> MultiTalkPipeline:
    """The loaded pipeline of a device slot, loading (and first unloading another one) only when the key changes.

    The key is (weights fingerprint, LoRA fingerprints and strengths, model config, slot, dtype policy, runtime
    options): a scene with other LoRAs or another memory mode gets its own load.
    """
    key = (
        fingerprint or layout.fingerprint(),
        tuple((lora.fingerprint()["file"], float(lora.scale)) for lora in loras),
        config.name,
        slot,
        dtype_policy,
        pipeline_class.__name__,
        options.get("runtime"),
    )
    with _slot_lock(slot):
        held = _PIPELINES.get(slot)
        if held is not None and held[0] == key:
            return held[1]
        if held is not None:
            logger.info("unloading the MultiTalk pipeline of %s (weights or settings changed)", slot)
            del _PIPELINES[slot]
            del held
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        device = torch_device(slot)
        pipeline = pipeline_class(layout, config, device=device, dtype_policy=dtype_policy, loras=loras, **options)
        _PIPELINES[slot] = (key, pipeline)
        return pipeline


def release_pipelines() -> None:
    """Drop every cached pipeline (tests, or before handing a GPU to something else)."""
    _PIPELINES.clear()
    gc.collect()


def placement_of(person: Person) -> Placement:
    """A person's placement for the person masks: their box, "left"/"right", or None (alone / centre)."""
    if person.bbox is not None:
        return tuple(float(v) for v in person.bbox)
    if person.side in ("left", "right"):
        return person.side
    return None


class MultiTalkRenderer:
    """Renders scenes with the MultiTalk model (official weights) through the renderer protocol.

    Args:
        weights: the weights root (required; the CLI resolves `MULTITALK_WEIGHTS`). Missing files raise
            `MissingWeightsError` (one message listing them all) from the first call that needs the weights.
        config: model config name or object ("multitalk-14b"; "tiny" for tests).
        device: where the models run ("cuda", "cuda:1", "cpu").
        dtype_policy: "official" / "fp32" / a `DtypePolicy`; default official on CUDA, fp32 on the CPU.
        sampling: default sampling settings (a scene's `context.settings` overrides them key by key).
        loras: LoRAs merged into the DiT for every scene (a scene's `model.loras` / preset add their own).
        runtime: default quantisation / memory mode / attention / compile / pass batching; a scene's model
            settings (`SceneContext.model`) override them.
    """

    name = "multitalk"
    family = "multitalk"  # the model family (screenplay `model.family`) this renderer renders
    label = "MultiTalk"  # the model's name in messages
    pixel_format = "rgb24"

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        config: str | ModelConfig = "multitalk-14b",
        device: str | torch.device = "cpu",
        dtype_policy: str | DtypePolicy | None = None,
        sampling: SamplingSettings | Mapping[str, Any] | None = None,
        loras: Sequence[LoraSpec] = (),
        runtime: RuntimeOptions | None = None,
    ) -> None:
        self.config = get_config(config)
        self.weights_root = weights_root(weights)
        self.slot = str(device)  # the device-pool slot: one loaded pipeline per slot
        self.device = torch_device(device)
        self.dtype_policy = resolve_dtype_policy(dtype_policy, self.device)
        self.sampling = sampling if isinstance(sampling, SamplingSettings) else SamplingSettings.from_mapping(sampling)
        self.loras = tuple(loras)
        self.runtime = runtime or RuntimeOptions()
        self.audio_margin_frames = self.config.audio_feature_margin + self.config.audio_window // 2
        self._layout: WeightsLayout | None = None
        self._identity: dict[str, Any] | None = None

    # -- protocol ---------------------------------------------------------------------------------------

    @property
    def geometry(self) -> ChunkGeometry:
        return self.config.geometry

    @property
    def layout(self) -> WeightsLayout:
        if self._layout is None:
            self._layout = resolve_weights(self.weights_root)  # raises the one missing-files message
        return self._layout

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            dt = self.dtype_policy
            self._identity = {
                "renderer": self.name,
                "version": VERSION,
                "model": self.config.name,
                "weights": self.layout.fingerprint(),
                "loras": [lora.fingerprint() for lora in self.loras],
                "dtypes": {c: str(getattr(dt, c)).removeprefix("torch.") for c in COMPONENTS},
                "sampling": self.sampling.to_json(),
                "carry": str(CARRY_DTYPE).removeprefix("torch."),
            }
        return self._identity

    def frame_size(self, context: SceneContext) -> tuple[int, int]:
        with Image.open(context.image) as opened:
            width, height = opened.size
        target_h, target_w = choose_bucket(height, width, self.config.bucket_table(context.resolution))
        return target_w, target_h

    def loras_for(self, context: SceneContext) -> tuple[LoraSpec, ...]:
        """The renderer's LoRAs, then the scene's (its `model.loras`, else its preset's, under the weights)."""
        scene = tuple(LoraSpec(lora.path, lora.strength) for lora in context.model.loras(self.weights_root))
        missing = [spec.path for spec in scene if not Path(spec.path).is_file()]
        if missing:
            raise MissingWeightsError(
                f"scene {context.scene_id!r}: LoRA file(s) {', '.join(map(str, missing))} not found; a preset's "
                f"LoRA is looked up under the weights folder ({self.weights_root}/loras/): download it there or name "
                "your own under `model.loras`"
            )
        return (*self.loras, *scene)

    def runtime_for(self, context: SceneContext) -> RuntimeOptions:
        """The renderer's runtime options with the scene's model settings (screenplay / CLI) applied."""
        model = context.model.settings
        if model.family != self.family:
            raise ValueError(
                f"scene {context.scene_id!r} asks for model family {model.family!r}; the {self.name} renderer "
                f"renders {self.family} (choose the renderer of that family)"
            )
        defaults = ModelSettings()
        changed = {
            name: getattr(model, name)
            for name in ("quantize", "offload", "resident_blocks", "attention", "compile")
            if getattr(model, name) != getattr(defaults, name)
        }
        if model.vae_tiling:
            changed["vae_tiles"] = VAETiles()
        return dataclasses.replace(self.runtime, **changed)

    def model_key_material(self, context: SceneContext) -> dict[str, Any]:
        """What of the scene's model settings changes its frames (empty for the defaults: keys stay as they were)."""
        runtime = self.runtime_for(context)
        material: dict[str, Any] = {}
        scene_loras = self.loras_for(context)[len(self.loras) :]  # the renderer's own are in identity()
        if scene_loras:
            material["loras"] = [lora.fingerprint() for lora in scene_loras]
        if runtime.quantize != "none":
            material["quantize"] = runtime.quantize
        if runtime.attention in APPROXIMATE_ATTENTION:
            material["attention"] = runtime.attention
        if runtime.vae_tiles is not None:
            material["vae_tiles"] = runtime.vae_tiles.to_json()
        return material

    def settings_for(self, context: SceneContext) -> SamplingSettings:
        """The renderer's sampling settings with the scene's overrides (`context.settings`) applied."""
        return self.sampling.merged(context.settings or {})

    def scene_spec(self, context: SceneContext, chunk: Chunk | None = None) -> SceneSpec:
        """The scene for the pipeline; with `chunk`, its prompt is that chunk's (scene prompt + line actions)."""
        settings = self.settings_for(context)
        return SceneSpec(
            image=Path(context.image),
            prompt=chunk_prompt(context, chunk) if chunk is not None else context.prompt,
            placements=tuple(placement_of(p) for p in context.persons),
            names=tuple(p.name for p in context.persons),
            resolution=context.resolution,
            seed=int(context.seed),
            negative_prompt=context.negative_prompt or settings.negative_prompt,
        )

    def chunk_key_material(self, context: SceneContext, chunk: Chunk) -> dict[str, Any]:
        spec = self.scene_spec(context, chunk)
        settings = self.settings_for(context)
        return {
            "image": file_digest(spec.image),
            "prompt": spec.prompt,
            "negative_prompt": spec.negative_prompt,
            "persons": [
                {"name": p.name, "placement": list(pl) if isinstance(pl, tuple) else pl}
                for p, pl in zip(context.persons, spec.placements, strict=True)
            ],
            "resolution": spec.resolution,
            "fps": context.fps,
            "seed": spec.seed,
            "sampling": settings.to_json(),
            **({"model": model} if (model := self.model_key_material(context)) else {}),
        }

    def render_chunk(
        self, context: SceneContext, chunk: Chunk, previous: Path | None, carry_out: Path
    ) -> Iterator[np.ndarray]:
        if context.fps != 25:
            raise ValueError(f"scene {context.scene_id!r}: {self.label} renders at 25 fps, got {context.fps}")
        spec = self.scene_spec(context, chunk)
        start, end = chunk.audio_window(self.audio_margin_frames)
        windows = tuple(context.read_track_window(i, start, end) for i in range(len(context.persons)))
        audio = ChunkAudio(windows, start)
        pipeline = self.pipeline(context)
        yield from pipeline.render_chunk(spec, chunk, audio, previous, carry_out, self.settings_for(context))

    # -- loading ----------------------------------------------------------------------------------------

    def pipeline(self, context: SceneContext | None = None) -> MultiTalkPipeline:
        """The loaded pipeline for this renderer's device and the scene's model settings (shared between renderers
        of the same key)."""
        return pipeline_for(
            self.layout,
            self.config,
            self.slot,
            self.dtype_policy,
            self.loras_for(context) if context is not None else self.loras,
            fingerprint=self.identity()["weights"],
            runtime=self.runtime_for(context) if context is not None else self.runtime,
        )
