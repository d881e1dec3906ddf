"""CLIP visual tower: preprocessing and features against the official tower, and the real-size key mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import CLIPVisionModel

from multitalk.model import clip

TOL = 1e-5


@pytest.fixture(scope="module")
def fixture(parity_path: Path):
    meta = json.loads((parity_path / "clip_visual.json").read_text())
    weights = load_file(parity_path / meta["weights_file"])
    io = load_file(parity_path / meta["io_file"])
    return meta, weights, io


@pytest.fixture(scope="module")
def config(fixture) -> clip.ClipVisualConfig:
    meta = fixture[0]
    norm = meta["preprocess"]["normalize"]
    return clip.ClipVisualConfig.from_official_args(meta["VisionTransformer_args_tiny"], norm["mean"], norm["std"])


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


def test_config_matches_the_verified_clip_vision_config(fixture, config):
    meta = fixture[0]
    hf = clip.clip_vision_config(config)
    for name, value in meta["transformers_CLIPVisionConfig_tiny"].items():
        assert getattr(hf, name) == value, name
    assert config.num_tokens == meta["num_tokens"]
    assert config.mean == tuple(meta["preprocess"]["normalize"]["mean"])


def test_registry_holds_the_real_vit_h_14(fixture):
    meta = fixture[0]
    real = clip.ClipVisualConfig.from_official_args(meta["VisionTransformer_args_real_vit_h_14"])
    assert clip.CONFIGS["vit-h-14"] == real
    assert real.num_tokens == meta["num_tokens_real"]
    hf = clip.clip_vision_config(real)
    for name, value in meta["transformers_CLIPVisionConfig_real_vit_h_14"].items():
        assert getattr(hf, name) == value, name


def test_preprocess_reproduces_the_official_pixels(fixture, config):
    _, _, io = fixture
    image = (io["image_uint8"].float() / 255 - 0.5) * 2  # the pipeline's [-1, 1] image
    assert _max_diff(image, io["image"]) <= 1e-6
    pixels = clip.preprocess(io["image"], config.image_size, config.mean, config.std)
    assert _max_diff(pixels, io["pixel_values"]) <= 1e-6
    with_frame_axis = clip.preprocess(io["image"][:, :, None], config.image_size, config.mean, config.std)
    assert torch.equal(with_frame_axis, pixels)


def test_preprocess_does_not_antialias(fixture, config):
    """An antialiased resize (torchvision/PIL style) is a real difference the pixels test must see."""
    _, _, io = fixture
    size = (config.image_size, config.image_size)
    smooth = torch.nn.functional.interpolate(io["image"], size=size, mode="bicubic", antialias=True)
    ours = clip.preprocess(io["image"], config.image_size, config.mean, config.std)
    m = torch.tensor(config.mean)[:, None, None]
    s = torch.tensor(config.std)[:, None, None]
    assert _max_diff(ours, (smooth * 0.5 + 0.5 - m) / s) > 1e-3


def test_features_match_clip_context(fixture, config):
    _, weights, io = fixture
    encoder = clip.ClipImageEncoder(clip.build_clip_visual(config, weights), config)
    assert len(encoder.model.vision_model.encoder.layers) == config.num_layers - 1
    features = encoder(io["image"])
    diff = _max_diff(features, io["clip_features"])
    assert diff <= TOL, f"clip_features max abs diff {diff:.3g}"


def test_full_depth_hidden_states_match(fixture, config):
    _, weights, io = fixture
    model = clip.build_clip_visual(config, weights, num_layers=config.num_layers)
    with torch.no_grad():
        out = model(pixel_values=io["pixel_values"], output_hidden_states=True)
    golden = io["hidden_states"]
    assert len(out.hidden_states) == golden.shape[0]
    for k, (ours, ref) in enumerate(zip(out.hidden_states, golden, strict=True)):
        assert _max_diff(ours, ref) <= TOL, f"hidden_states[{k}]"
    # the last block changes the features: the truncation is not a no-op
    assert _max_diff(out.hidden_states[-1], io["clip_features"]) > 1e-2


def test_pth_file_with_text_tower_loads(fixture, config, tmp_path):
    _, weights, io = fixture
    assert any(k.startswith("textual.") for k in weights) and "log_scale" in weights
    path = tmp_path / "models_clip_tiny.pth"
    torch.save(weights, path)
    encoder = clip.ClipImageEncoder(clip.build_clip_visual(config, path), config)
    assert _max_diff(encoder(io["image"]), io["clip_features"]) <= TOL


def test_half_precision_encoder_runs_on_cpu(fixture, config):
    _, weights, io = fixture
    encoder = clip.ClipImageEncoder(clip.build_clip_visual(config, weights, dtype=torch.bfloat16), config)
    features = encoder(io["image"])
    assert features.dtype == torch.bfloat16
    golden = io["clip_features"]
    assert _max_diff(features, golden) <= 5e-2 * max(1.0, golden.abs().max().item())


@pytest.mark.parametrize("depth_offset", [0, 1])
def test_real_vit_h_14_key_mapping_matches_transformers(parity_path: Path, depth_offset):
    real = json.loads((parity_path / "clip_vit_h14_visual_state_dict_shapes.json").read_text())
    shapes = dict(real["visual_state_dict"])
    assert len(shapes) == real["num_keys_visual"]
    shapes["log_scale"] = []  # the rest of the checkpoint is ignored
    shapes["textual.norm.weight"] = real["non_visual_key_patterns"]["textual.norm.weight"]
    official = {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
    config = clip.ClipVisualConfig.from_official_args(real["visual_constructor_args"])
    depth = config.num_layers - depth_offset
    mapped = clip.map_clip_state_dict(official, num_layers=depth)
    with torch.device("meta"):
        model = CLIPVisionModel(clip.clip_vision_config(config, depth))
    expected = {key: tuple(t.shape) for key, t in model.state_dict().items()}
    assert set(mapped) == set(expected)
    assert {key: tuple(t.shape) for key, t in mapped.items()} == expected
    features = model.vision_model.embeddings.position_embedding.weight.shape[0]
    assert features == config.num_tokens


def test_fused_qkv_is_split_in_q_k_v_order(fixture):
    _, weights, _ = fixture
    mapped = clip.map_clip_state_dict(weights)
    fused = weights["visual.transformer.0.attn.to_qkv.weight"]
    dim = fused.shape[1]
    prefix = "vision_model.encoder.layers.0.self_attn."
    assert torch.equal(mapped[prefix + "q_proj.weight"], fused[:dim])
    assert torch.equal(mapped[prefix + "k_proj.weight"], fused[dim : 2 * dim])
    assert torch.equal(mapped[prefix + "v_proj.weight"], fused[2 * dim :])


def test_unsupported_variants_and_keys_are_named(fixture):
    meta, weights, _ = fixture
    with pytest.raises(ValueError, match="quick_gelu"):
        clip.ClipVisualConfig.from_official_args(dict(meta["VisionTransformer_args_tiny"], activation="quick_gelu"))
    with pytest.raises(KeyError, match=r"visual\.extra"):
        clip.map_clip_state_dict({**weights, "visual.extra": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        clip.preprocess(torch.zeros(1, 4, 8, 8), 8)
