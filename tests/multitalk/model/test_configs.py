"""The model-config registry: the real values, the tiny stack, and the cross-module checks."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from multitalk.model import buckets
from multitalk.model.checkpoint import build_on_meta
from multitalk.model.chunk_geometry import ChunkGeometry
from multitalk.model.configs import CONFIGS, ModelConfig, get_config
from multitalk.model.dit import MultiTalkDiT


def test_registry_has_the_real_and_the_tiny_stack():
    assert set(CONFIGS) >= {"multitalk-14b", "tiny"}
    assert get_config("tiny") is CONFIGS["tiny"]
    assert get_config(CONFIGS["tiny"]) is CONFIGS["tiny"]
    with pytest.raises(ValueError, match=r"unknown model config 'big'.*multitalk-14b"):
        get_config("big")


def test_real_values_are_the_released_model():
    c = CONFIGS["multitalk-14b"]
    assert (c.dit.dim, c.dit.ffn_dim, c.dit.num_heads, c.dit.num_layers) == (5120, 13824, 40, 40)
    assert (c.vae.dim, c.vae.z_dim, c.vae.dim_mult, c.vae.num_res_blocks) == (96, 16, (1, 2, 4, 4), 2)
    assert (c.t5.vocab, c.t5.dim, c.t5.num_layers, c.t5.num_heads) == (256384, 4096, 24, 64)
    assert (c.clip.num_tokens, c.clip.dim, c.clip.num_layers) == (257, 1280, 32)
    assert (c.wav2vec.num_hidden_layers, c.wav2vec.hidden_size) == (12, 768)
    assert c.geometry == ChunkGeometry(81, 25) and c.latent_frames == 21
    assert c.text_len == 512 and c.default_steps == 40
    assert c.shift_for("480p") == 7.0 and c.shift_for("720p") == 11.0
    assert c.bucket_table("480p") == buckets.BUCKETS_480P and c.bucket_table("720p") == buckets.BUCKETS_720P
    assert c.audio_feature_margin == 64 and c.audio_window == 5
    assert c.spatial_stride == 16


def test_real_dit_has_exactly_the_checkpoint_keys(parity_path):
    expected = json.loads((parity_path / "dit_14b_state_dict_shapes.json").read_text())
    model = build_on_meta(lambda: MultiTalkDiT(CONFIGS["multitalk-14b"].dit))
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert shapes == expected


def test_tiny_stack_is_consistent_and_tiny():
    c = CONFIGS["tiny"]
    assert c.geometry == ChunkGeometry(17, 5) and c.latent_frames == 5
    params = sum(math.prod(v.shape) for v in build_on_meta(lambda: MultiTalkDiT(c.dit)).state_dict().values())
    assert params < 1_000_000
    assert c.audio_feature_margin == c.wav2vec.num_conv_pos_embeddings // 2
    for table in c.buckets.values():
        assert all(h % 16 == 0 and w % 16 == 0 for h, w in table.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: {"text_len": c.text_len + 1}, "text_len"),
        (lambda c: {"dit": dataclasses.replace(c.dit, text_dim=c.dit.text_dim * 2)}, "text_dim"),
        (lambda c: {"dit": dataclasses.replace(c.dit, clip_tokens=5)}, "clip_tokens"),
        (lambda c: {"dit": dataclasses.replace(c.dit, audio_blocks=7)}, "audio_blocks"),
        (lambda c: {"buckets": {"480p": {"1.00": (40, 40)}}}, "multiple of 16"),
        (lambda c: {"buckets": {"360p": {"1.00": (32, 32)}}}, "shifts"),
    ],
)
def test_pieces_that_do_not_fit_are_rejected(change, message):
    base = CONFIGS["tiny"]
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(base, **change(base))


def test_unknown_resolution_is_named():
    with pytest.raises(ValueError, match="no '1080p' buckets"):
        CONFIGS["tiny"].bucket_table("1080p")
    assert isinstance(CONFIGS["tiny"], ModelConfig)
