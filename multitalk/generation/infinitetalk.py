"""The InfiniteTalk chunk loop: every chunk re-anchored on a reference frame, its motion latents pinned clean.

InfiniteTalk (same authors, same Wan2.1-I2V-14B base, same DiT, VAE, wav2vec2, masks, schedule, guidance and
colour correction as MultiTalk) changes only how a chunk is conditioned and sampled (the official InfiniteTalk code):

1. reference frame: the scene image, or for a dubbed video its frame `chunk.start` (= the chunk's audio start,
   k·a with a = frame_num − motion_frames), clamped to the last frame. It is the CLIP input and frame 0 of the
   condition video;
2. condition `y`: `[4 mask channels, vae.encode([reference, zeros × (frame_num − 1)])]` with the mask on latent
   frame 0 only, for **every** chunk (MultiTalk encodes the motion frames and masks T_m latent frames);
3. motion latents: `vae.encode(reference)` (1 latent frame) on the first chunk; `vae.encode(last motion_frames
   decoded, colour-corrected frames of the previous chunk)` (T_m = 1 + (M − 1)//4 latent frames) on later ones;
4. sampling: latent frames 0…T_m−1 are overwritten with the **clean** motion latents before every model call
   and after every Euler step, so the latent handed to the VAE holds them exactly (MultiTalk re-noises them);
5. decode, colour-correct towards frame 0 of the source (fixed for the whole scene), deliver as MultiTalk does
   (the first chunk all its frames, later chunks frames M…), carry the last M frames to the next chunk.

Everything else is the MultiTalk pipeline's (loading, text cache, windowed audio features, batched guidance
passes, TeaCache, APG, streaming decode, carry on disk), so `InfiniteTalkPipeline` subclasses it and overrides
the DiT loading (another adapter file), the per-chunk conditions and the sampling loop.

Pinning is done around the shared `sampler.sample`: the denoiser pins the latent it hands to the DiT, and the
final latent is pinned once more. This is the official loop exactly: the Euler update of latent frame f depends
only on frame f of the latent and of the velocity, and frames 0…T_m−1 are overwritten after every step anyway.

**Random draws (ours).** The official loop seeds the global RNG once per run and draws each chunk's initial
noise from it, plus, on later chunks, steps + 1 `randn_like` tensors for a noisy motion injection that is
overwritten at once (dead code, no effect on any value). We draw only the initial noise, from the chunk's own
generator `chunk_generator(scene seed, chunk index)` as MultiTalk does, so a chunk depends only on its cache key
and a resumed render equals an uninterrupted one; the dead draws are not made. Parity does not need the official
stream: the fixtures record every chunk's noise, which the tests feed in.

**Ours, as for MultiTalk:** exactly N frames for an N-frame scene (no 1000-frame cap), silence past the end of
the audio (not time reflection), the carry stored as float16 on disk. The fp32 LayerNorm InfiniteTalk asks for on
the audio tokens (`audio_proj.norm` under autocast) is what our `LayerNorm` always does (fp32 maths, cast back).

References: MeiGen-AI/InfiniteTalk `wan/multitalk.py` (`generate_infinitetalk`), `wan/utils/utils.py`
(`extract_specific_frames`); tests/multitalk/generation/test_infinitetalk_parity.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from multitalk.generation.pipeline import (
    SCENE_CACHE_SIZE,
    ChunkAudio,
    ChunkConditions,
    MultiTalkPipeline,
    SamplingSettings,
    SceneSpec,
    _Denoiser,
    read_carry,
)
from multitalk.generation.sampler import Denoiser, Guidance, GuidancePass, Step, condition_mask, sample
from multitalk.generation.streaming import Chunk
from multitalk.media.source_video import SourceVideo
from multitalk.model import infinitetalk_weights as ITW
from multitalk.model.buckets import fit_image_to_bucket
from multitalk.model.configs import ModelConfig
from multitalk.model.dit import MultiTalkDiT
from multitalk.model.masks import build_person_masks
from multitalk.model.vae import WanVAE

logger = logging.getLogger(__name__)

MOTION_FRAMES = 9  # official CLI default and every README example (the official InfiniteTalk code)


# --------------------------------------------------------------------------------------------------------
# Pure pieces


def reference_frame_index(chunk_start: int, video_frames: int | None) -> int:
    """The source frame that anchors a chunk: its audio start, clamped to the last frame; 0 for an image."""
    if chunk_start < 0:
        raise ValueError(f"chunk start must be >= 0, got {chunk_start}")
    if video_frames is None:
        return 0
    if video_frames < 1:
        raise ValueError(f"a source video needs at least one frame, got {video_frames}")
    return min(chunk_start, video_frames - 1)


def pin_motion(latent: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
    """`latent` (C, F, h, w) with frames [:T_m] replaced by the clean `motion` latents (C, T_m, h, w); a new tensor."""
    if motion.dim() != latent.dim() or motion.shape[0] != latent.shape[0] or motion.shape[1] > latent.shape[1]:
        raise ValueError(f"motion {tuple(motion.shape)} does not fit latent {tuple(latent.shape)}")
    out = latent.clone()
    out[:, : motion.shape[1]] = motion.to(out)
    return out


class PinnedDenoiser:
    """Hands the DiT the latent with its motion frames pinned to the clean motion latents."""

    def __init__(self, denoise: Denoiser, motion: torch.Tensor) -> None:
        self.denoise = denoise
        self.motion = motion

    def __call__(self, latent: torch.Tensor, step: Step, passes: Sequence[GuidancePass]) -> torch.Tensor:
        return self.denoise(pin_motion(latent, self.motion), step, passes)


def sample_pinned(
    denoise: Denoiser,
    noise: torch.Tensor,
    motion: torch.Tensor,
    guidance: Guidance,
    schedule: torch.Tensor,
    on_step: Callable[[Step, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """The official InfiniteTalk sampling loop on the shared sampler: (C, F, h, w) float32 final latent.

    `on_step` sees the pinned latent after each step (what the next step, or the VAE, receives).
    """
    motion = motion.to(device=noise.device, dtype=torch.float32)

    def pinned_step(step: Step, latent: torch.Tensor) -> None:
        on_step(step, pin_motion(latent, motion))

    latent = sample(
        PinnedDenoiser(denoise, motion),
        pin_motion(noise.to(torch.float32), motion),
        guidance=guidance,
        schedule=schedule,
        on_step=pinned_step if on_step is not None else None,
    )
    return pin_motion(latent, motion)


@dataclass(frozen=True)
class ChunkCondition:
    """What InfiniteTalk builds for one chunk from its reference frame and the carried frames."""

    clip_fea: torch.Tensor  # (1, clip_tokens, clip_dim) CLIP tokens of the reference frame
    y: torch.Tensor  # (1, 4 + z, F_lat, h, w) mask (latent frame 0) + condition latent, in `dtype`
    motion: torch.Tensor  # (z, T_m, h, w) float32 clean motion latents


@torch.no_grad()
def chunk_condition(
    vae: WanVAE,
    clip: Callable[[torch.Tensor], torch.Tensor],
    reference: torch.Tensor,
    carried: torch.Tensor | None,
    frame_num: int,
    dtype: torch.dtype = torch.float32,
) -> ChunkCondition:
    """CLIP tokens, condition `y` and motion latents of one chunk.

    Args:
        vae: the Wan VAE.
        clip: (1, 3, H, W) in [-1, 1] -> (1, clip_tokens, clip_dim).
        reference: (1, 3, 1, H, W) the chunk's reference frame in [-1, 1].
        carried: (1, 3, M, H, W) the previous chunk's last M decoded, colour-corrected frames; None on the first.
        frame_num: frames per chunk.
        dtype: the DiT dtype `y` is cast to (official: the condition goes to the DiT in its dtype).
    """
    if reference.dim() != 5 or reference.shape[:3] != (1, 3, 1):
        raise ValueError(f"reference must be (1, 3, 1, H, W), got {tuple(reference.shape)}")
    if carried is not None and (carried.dim() != 5 or carried.shape[:2] != (1, 3)):
        raise ValueError(f"carried frames must be (1, 3, M, H, W), got {tuple(carried.shape)}")
    clip_fea = clip(reference[:, :, -1])  # (1, clip_tokens, clip_dim)
    zeros = reference.new_zeros(1, 3, frame_num - 1, *reference.shape[3:])
    y_latent = vae.encode(torch.cat([reference, zeros], dim=2))  # (1, z, F_lat, h, w) fp32
    mask = condition_mask(frame_num, 1, vae.config.temporal_factor)  # (4, F_lat): latent frame 0 only
    mask = mask[None, :, :, None, None].expand(1, -1, -1, *y_latent.shape[3:]).to(y_latent)
    y = torch.cat([mask, y_latent], dim=1).to(dtype)  # (1, 4 + z, F_lat, h, w)
    motion = vae.encode(reference if carried is None else carried)[0]  # (z, T_m, h, w) fp32
    return ChunkCondition(clip_fea, y, motion)


# --------------------------------------------------------------------------------------------------------
# The pipeline


@dataclass(frozen=True)
class InfiniteTalkSceneSpec(SceneSpec):
    """A scene for InfiniteTalk: `image` is the reference image, or with `video` the 25 fps take to re-voice."""

    video: bool = False


@dataclass
class _Scene:
    reference: torch.Tensor  # (1, 3, 1, H, W) frame 0 of the source in [-1, 1]: colour reference, chunk 0
    masks: torch.Tensor  # (3, h, w) latent-grid person masks
    target_hw: tuple[int, int]
    video: SourceVideo | None


class InfiniteTalkPipeline(MultiTalkPipeline):
    """The InfiniteTalk models of one release (one adapter variant) on one device; renders chunks of any scenes.

    Args:
        weights: the weights root (or a resolved `InfiniteTalkLayout`).
        config: a `ModelConfig` or its name ("infinitetalk-14b", "tiny-infinitetalk").
        variant: "single" (one on-screen speaker) or "multi" (one or two); default: the layout's, else single.
        Other keyword arguments: as `MultiTalkPipeline` (its `runtime` options, quantisation while loading
        included, apply unchanged: the DiT is the MultiTalk one).
    """

    def __init__(
        self,
        weights: str | Path | ITW.InfiniteTalkLayout,
        config: str | ModelConfig = "infinitetalk-14b",
        *,
        variant: str | None = None,
        **options,
    ) -> None:
        if isinstance(weights, ITW.InfiniteTalkLayout):
            layout = weights
            variant = variant or layout.variant
        else:
            variant = variant or "single"
            layout = ITW.resolve_infinitetalk_weights(Path(weights), variant)
        if layout.variant != variant:
            raise ValueError(f"weights layout is for the {layout.variant!r} adapter, asked for {variant!r}")
        self.variant = variant
        super().__init__(layout, config, **options)

    def _read_dit_weights(self, meta: MultiTalkDiT, home: torch.device) -> MultiTalkDiT:
        return ITW.load_infinitetalk_dit(meta, self.layout, dtype=self.dtypes.dit, device=home)

    def _scene(self, spec: SceneSpec) -> _Scene:
        path = Path(spec.image)
        stat = path.stat()
        is_video = bool(getattr(spec, "video", False))
        key = (str(path), stat.st_mtime_ns, stat.st_size, is_video, spec.placements, spec.names, spec.resolution)
        if key in self._scene_cache:
            self._scene_cache.move_to_end(key)
            return self._scene_cache[key]
        video = SourceVideo.open(path) if is_video else None
        first = self._source_frame(path, video, 0)
        image_hw = (first.height, first.width)
        target_hw = self.frame_hw(image_hw, spec.resolution)
        masks = build_person_masks(
            image_hw,
            list(spec.placements),
            target_hw,
            names=list(spec.names) or None,
            vae_stride=self.config.vae.spatial_factor,
            patch=self.config.dit.patch_size[1],
        ).latent.to(self.device)
        state = _Scene(self._fit(first, target_hw), masks, target_hw, video)
        self._scene_cache[key] = state
        while len(self._scene_cache) > SCENE_CACHE_SIZE:
            self._scene_cache.popitem(last=False)
        return state

    @staticmethod
    def _source_frame(path: Path, video: SourceVideo | None, index: int) -> Image.Image:
        if video is None:
            with Image.open(path) as opened:
                return opened.convert("RGB")
        return Image.fromarray(video.frame(index))

    def _fit(self, image: Image.Image, target_hw: tuple[int, int]) -> torch.Tensor:
        return fit_image_to_bucket(image, target_hw)[:, None][None].to(self.device)  # (1, 3, 1, H, W)

    def reference_frame(self, spec: SceneSpec, chunk: Chunk) -> torch.Tensor:
        """The chunk's reference frame (1, 3, 1, H, W) in [-1, 1]."""
        scene = self._scene(spec)
        if scene.video is None:
            return scene.reference
        index = reference_frame_index(chunk.start, scene.video.frames)
        if index == 0:
            return scene.reference
        return self._fit(self._source_frame(Path(spec.image), scene.video, index), scene.target_hw)

    @torch.no_grad()
    def conditions(
        self, spec: SceneSpec, chunk: Chunk, audio: ChunkAudio, previous: Path | None, settings: SamplingSettings
    ) -> ChunkConditions:
        cfg = self.config
        if chunk.frames != cfg.geometry.frame_num:
            raise ValueError(f"chunk {chunk.index} has {chunk.frames} frames, the model makes {cfg.geometry.frame_num}")
        if len(audio.windows) != len(spec.placements):
            raise ValueError(f"got audio for {len(audio.windows)} persons, the scene has {len(spec.placements)}")
        if len(spec.placements) == 2 and self.variant != "multi":
            raise ValueError(
                f"a scene with two on-screen speakers needs the InfiniteTalk 'multi' adapter; this pipeline loaded "
                f"{self.variant!r}"
            )
        scene = self._scene(spec)
        context, context_null = self.encode_text(spec.prompt, spec.negative_prompt or settings.negative_prompt)
        carried = None
        if chunk.motion_frames:
            if previous is None:
                raise ValueError(f"chunk {chunk.index} continues chunk {chunk.index - 1}: its carried state is needed")
            carried = read_carry(previous, chunk.motion_frames, scene.target_hw).to(self.device)
        reference = self.reference_frame(spec, chunk)
        cond = chunk_condition(self.vae, self.clip, reference, carried, cfg.geometry.frame_num, self.dtypes.dit)
        features = self.audio_features(audio, chunk).to(self.device)  # (P, frame_num, window, L, C)
        return ChunkConditions(
            context=context,
            context_null=context_null,
            clip_fea=cond.clip_fea,
            y=cond.y,
            audio=features.to(self.dtypes.dit),
            masks=scene.masks,
            motion=cond.motion,
            reference=scene.reference,  # colour reference: frame 0 of the source, for every chunk
        )

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
        return sample_pinned(denoise, noise, cond.motion, guidance, schedule, on_step)
