"""The model registry: every size of the MultiTalk stack in one frozen config, by name.

A `ModelConfig` composes the per-module configs the model files define (`DiTConfig`, `VAEConfig`,
`T5EncoderConfig`, `ClipVisualConfig`) with what sits between them: the wav2vec2 sizes, the text length, the
chunk geometry, the resolution buckets, the default schedule shifts and the audio-feature margin. Its
`__post_init__` checks that the pieces fit together (T5 width = DiT text width, CLIP tokens = DiT image tokens,
wav2vec layers x hidden = DiT audio input, ...), so a config that would fail deep inside a forward fails here.

- `CONFIGS["multitalk-14b"]`: the released model (Wan2.1-I2V-14B-480P + MeiGen-MultiTalk + chinese-wav2vec2-base).
- `CONFIGS["tiny"]`: the same stack a few thousand times smaller, with 17/5-frame chunks and a small bucket
  table, for tests and benches on a CPU (`multitalk.testing.tiny_release` writes random weights for it in the
  official file layout).

References:
- Wan-Video/Wan2.1 `wan/configs/` (a registry of named configs), MeiGen-AI/MultiTalk
  `wan/configs/wan_multitalk_14B.py` for the values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from multitalk.model.buckets import BUCKETS
from multitalk.model.chunk_geometry import RELEASED_GEOMETRY, ChunkGeometry
from multitalk.model.clip import ClipVisualConfig
from multitalk.model.dit import DiTConfig
from multitalk.model.t5 import T5EncoderConfig
from multitalk.model.vae import VAEConfig
from multitalk.model.wav2vec import DEFAULT_MARGIN_FRAMES, WINDOW


@dataclass(frozen=True)
class Wav2VecConfig:
    """Sizes of the wav2vec2 audio encoder (a transformers `Wav2Vec2Model`, base-model flags)."""

    hidden_size: int = 768  # transformer width = DiT audio_channels
    num_hidden_layers: int = 12  # stacked layer outputs = DiT audio_blocks
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    conv_dim: tuple[int, ...] = (512,) * 7  # CNN feature-encoder channels
    conv_kernel: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)  # standard kernels: ~50 Hz from 16 kHz
    conv_stride: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    num_conv_pos_embeddings: int = 128  # positional-convolution kernel (frames)
    num_conv_pos_embedding_groups: int = 16

    def transformers_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the equivalent `transformers.Wav2Vec2Config` (base flags, no dropout)."""
        return {
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
            "conv_dim": list(self.conv_dim),
            "conv_kernel": list(self.conv_kernel),
            "conv_stride": list(self.conv_stride),
            "num_conv_pos_embeddings": self.num_conv_pos_embeddings,
            "num_conv_pos_embedding_groups": self.num_conv_pos_embedding_groups,
            "feat_extract_norm": "group",  # base model: one GroupNorm group per channel on the first conv
            "conv_bias": False,
            "do_stable_layer_norm": False,  # post-LN transformer
        }


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the shapes of one MultiTalk stack."""

    name: str
    dit: DiTConfig
    vae: VAEConfig
    t5: T5EncoderConfig
    clip: ClipVisualConfig
    wav2vec: Wav2VecConfig
    geometry: ChunkGeometry  # frames per chunk and motion frames carried into the next one
    text_len: int = 512  # text tokens after padding/truncation (tokenizer and DiT)
    # resolution name -> bucket table (h/w ratio key -> (height, width))
    buckets: Mapping[str, Mapping[str, tuple[int, int]]] = field(default_factory=lambda: BUCKETS, hash=False)
    # resolution name -> default schedule shift (official: 7 at 480p, 11 at 720p)
    shifts: Mapping[str, float] = field(default_factory=lambda: {"480p": 7.0, "720p": 11.0}, hash=False)
    default_steps: int = 40
    audio_feature_margin: int = DEFAULT_MARGIN_FRAMES  # wav2vec context frames each side of a chunk's frames
    audio_window: int = WINDOW  # feature frames per video frame (t-2..t+2)

    def __post_init__(self) -> None:
        d = self.dit
        checks = [
            (d.text_dim == self.t5.dim, f"DiT text_dim {d.text_dim} != T5 dim {self.t5.dim}"),
            (d.text_len == self.text_len, f"DiT text_len {d.text_len} != text_len {self.text_len}"),
            (d.clip_tokens == self.clip.num_tokens, f"DiT clip_tokens {d.clip_tokens} != CLIP {self.clip.num_tokens}"),
            (d.clip_dim == self.clip.dim, f"DiT clip_dim {d.clip_dim} != CLIP dim {self.clip.dim}"),
            (
                d.audio_blocks == self.wav2vec.num_hidden_layers,
                f"DiT audio_blocks {d.audio_blocks} != wav2vec layers {self.wav2vec.num_hidden_layers}",
            ),
            (
                d.audio_channels == self.wav2vec.hidden_size,
                f"DiT audio_channels {d.audio_channels} != wav2vec hidden {self.wav2vec.hidden_size}",
            ),
            (d.audio_window == self.audio_window, f"DiT audio_window {d.audio_window} != {self.audio_window}"),
            (
                d.vae_scale == self.vae.temporal_factor,
                f"DiT vae_scale {d.vae_scale} != VAE temporal factor {self.vae.temporal_factor}",
            ),
            (d.out_dim == self.vae.z_dim, f"DiT out_dim {d.out_dim} != VAE z_dim {self.vae.z_dim}"),
            (
                d.in_dim == 2 * self.vae.z_dim + d.vae_scale,
                f"DiT in_dim {d.in_dim} != noisy latent + mask + condition ({2 * self.vae.z_dim + d.vae_scale})",
            ),
            (set(self.shifts) >= set(self.buckets), f"shifts {dict(self.shifts)} miss a resolution of the buckets"),
        ]
        for ok, why in checks:
            if not ok:
                raise ValueError(f"model config {self.name!r}: {why}")
        stride = self.spatial_stride
        for resolution, table in self.buckets.items():
            for key, (h, w) in table.items():
                if h % stride or w % stride:
                    raise ValueError(
                        f"model config {self.name!r}: bucket {resolution}/{key} = {h}x{w} is not a multiple of "
                        f"{stride} (VAE stride x patch)"
                    )

    @property
    def spatial_stride(self) -> int:
        """Pixels per token along H and W (VAE 8 x patch 2 = 16)."""
        return self.vae.spatial_factor * self.dit.patch_size[1]

    @property
    def latent_frames(self) -> int:
        """Latent frames of one chunk (21 for 81 frames)."""
        return 1 + (self.geometry.frame_num - 1) // self.vae.temporal_factor

    def bucket_table(self, resolution: str) -> Mapping[str, tuple[int, int]]:
        if resolution not in self.buckets:
            raise ValueError(
                f"model config {self.name!r} has no {resolution!r} buckets (known: {', '.join(self.buckets)})"
            )
        return self.buckets[resolution]

    def shift_for(self, resolution: str) -> float:
        if resolution not in self.shifts:
            raise ValueError(f"model config {self.name!r} has no default shift for {resolution!r}")
        return float(self.shifts[resolution])


def _multitalk_14b() -> ModelConfig:
    return ModelConfig(
        name="multitalk-14b",
        dit=DiTConfig(),  # the defaults are the released DiT: dim 5120, 40 layers x 40 heads
        vae=VAEConfig(),  # dim 96, z 16, dim_mult (1, 2, 4, 4), 2 res blocks
        t5=T5EncoderConfig(),  # umT5-XXL: vocab 256384, dim 4096, 24 layers, 64 heads
        clip=ClipVisualConfig(),  # ViT-H/14 at 224: 257 tokens x 1280, 32 blocks
        wav2vec=Wav2VecConfig(),  # chinese-wav2vec2-base: 12 layers x 768
        geometry=RELEASED_GEOMETRY["multitalk"],
        text_len=512,
    )


TINY_BUCKETS: dict[str, dict[str, tuple[int, int]]] = {
    # ratio keys as in the official tables; sizes multiples of 16, about 64x64 / 96x96 pixels of area
    "480p": {"0.50": (48, 96), "0.75": (48, 64), "1.00": (64, 64), "1.33": (64, 48), "2.00": (96, 48)},
    "720p": {"0.50": (64, 128), "1.00": (96, 96), "2.00": (128, 64)},
}


def _tiny() -> ModelConfig:
    text_dim, clip_dim, clip_size, clip_patch = 32, 32, 32, 8
    wav = Wav2VecConfig(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    dit = DiTConfig(
        dim=32,
        ffn_dim=64,
        freq_dim=16,
        num_heads=2,
        num_layers=2,
        text_dim=text_dim,
        text_len=32,
        clip_tokens=1 + (clip_size // clip_patch) ** 2,
        clip_dim=clip_dim,
        audio_blocks=wav.num_hidden_layers,
        audio_channels=wav.hidden_size,
        audio_intermediate_dim=16,
        audio_output_dim=16,
        audio_context_tokens=4,
    )
    return ModelConfig(
        name="tiny",
        dit=dit,
        vae=VAEConfig(dim=4),
        t5=T5EncoderConfig(vocab=128, dim=text_dim, dim_attn=32, dim_ffn=64, num_heads=4, num_layers=2),
        clip=ClipVisualConfig(
            image_size=clip_size, patch_size=clip_patch, dim=clip_dim, out_dim=24, num_heads=4, num_layers=3
        ),
        wav2vec=wav,
        geometry=ChunkGeometry(frame_num=17, motion_frames=5),
        text_len=32,
        buckets=TINY_BUCKETS,
        default_steps=4,
        audio_feature_margin=wav.num_conv_pos_embeddings // 2,
    )


CONFIGS: dict[str, ModelConfig] = {"multitalk-14b": _multitalk_14b(), "tiny": _tiny()}


def get_config(name: str | ModelConfig) -> ModelConfig:
    """A registered config by name (a `ModelConfig` passes through)."""
    if isinstance(name, ModelConfig):
        return name
    if name not in CONFIGS:
        raise ValueError(f"unknown model config {name!r} (known: {', '.join(CONFIGS)})")
    return CONFIGS[name]


# InfiniteTalk (the official InfiniteTalk code): the MultiTalk stack and weights layout of the same base, with 9 motion
# frames (3 latent frames) carried between 81-frame chunks, so every later chunk adds 72 frames.
CONFIGS["infinitetalk-14b"] = dataclasses.replace(
    CONFIGS["multitalk-14b"], name="infinitetalk-14b", geometry=RELEASED_GEOMETRY["infinitetalk"]
)
CONFIGS["tiny-infinitetalk"] = dataclasses.replace(
    CONFIGS["tiny"], name="tiny-infinitetalk", geometry=ChunkGeometry(frame_num=17, motion_frames=5)
)


# The config of each model family for a MultiTalk config name (a render names one model config for all scenes).
FAMILY_CONFIGS: dict[str, dict[str, str]] = {
    "multitalk": {},
    "infinitetalk": {"multitalk-14b": "infinitetalk-14b", "tiny": "tiny-infinitetalk"},
}


def config_for_family(config: str | ModelConfig, family: str) -> ModelConfig:
    """`config` as the given family runs it: `multitalk-14b` -> `infinitetalk-14b`, `tiny` -> `tiny-infinitetalk`
    for InfiniteTalk; a config of the family already (or a MultiTalk one for MultiTalk) passes through."""
    if family not in FAMILY_CONFIGS:
        raise ValueError(f"unknown model family {family!r} (known: {', '.join(FAMILY_CONFIGS)})")
    name = config.name if isinstance(config, ModelConfig) else config
    mapped = FAMILY_CONFIGS[family].get(name)
    return get_config(mapped) if mapped is not None else get_config(config)
