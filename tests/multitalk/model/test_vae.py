"""Wan 2.1 VAE: strict loading of the official keys, encode/decode parity, streaming and causality."""

from __future__ import annotations

import pytest
import torch

from multitalk.model.vae import CACHE_T, VAE_CONFIGS, CausalConv3d, FeatureCache, VAEConfig, WanVAE

LATENT_TOL = 1e-5  # parity/README.md: vae.latent
DECODE_TOL = 3e-5  # parity/README.md: vae.decoded, vae.decoded_from_random_latent


@pytest.fixture(scope="module")
def vae_fixture(load_parity):
    meta, tensors = load_parity("vae")
    weights_meta, weights = load_parity(meta["weights_file"].removesuffix(".safetensors"))
    config = VAEConfig.from_official(meta["config"], meta["latent_mean"], meta["latent_std"])
    model = WanVAE.from_state_dict(weights, config)
    return meta, tensors, weights_meta, model


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


def test_config_from_json(vae_fixture):
    meta, _, weights_meta, model = vae_fixture
    cfg = model.config
    assert cfg.dim == meta["config"]["dim"]
    assert list(cfg.dim_mult) == meta["config"]["dim_mult"]
    assert list(cfg.temperal_downsample) == meta["config"]["temperal_downsample"]
    assert weights_meta["config"] == meta["config"]
    real = VAEConfig.from_official(meta["real_checkpoint_config"])
    assert real == VAE_CONFIGS["wan2.1"]
    assert list(real.latent_mean) == meta["latent_mean"]
    assert list(real.latent_std) == meta["latent_std"]


def test_state_dict_matches_official_keys_and_shapes(vae_fixture):
    _, _, weights_meta, model = vae_fixture
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == weights_meta["keys"]
    assert len(ours) == weights_meta["num_keys"]
    assert sum(p.numel() for p in model.parameters()) == weights_meta["num_params"]


def test_from_checkpoint_file(vae_fixture, parity_path):
    meta, _, _, model = vae_fixture
    loaded = WanVAE.from_checkpoint(parity_path / meta["weights_file"], model.config)
    assert all(torch.equal(a, b) for a, b in zip(loaded.parameters(), model.parameters(), strict=True))
    with pytest.raises(FileNotFoundError, match="not found"):
        WanVAE.from_checkpoint(parity_path / "missing.pth", model.config)


def test_real_config_on_meta_device(vae_fixture):
    """The real Wan2.1_VAE.pth layout: same key names as the fixture (names do not depend on dim), ~127 M."""
    _, _, weights_meta, _ = vae_fixture
    with torch.device("meta"):
        real = WanVAE(VAE_CONFIGS["wan2.1"])
    state = real.state_dict()
    assert set(state) == set(weights_meta["keys"])
    dim = VAE_CONFIGS["wan2.1"].dim
    mid = dim * VAE_CONFIGS["wan2.1"].dim_mult[-1]
    assert state["encoder.conv1.weight"].shape == (dim, 3, 3, 3, 3)
    assert state["decoder.middle.1.to_qkv.weight"].shape == (3 * mid, mid, 1, 1)
    assert state["decoder.head.2.weight"].shape == (3, dim, 3, 3, 3)
    num_params = sum(p.numel() for p in real.parameters())
    assert 126e6 < num_params < 128e6, num_params


def test_encode_parity(vae_fixture):
    meta, t, _, model = vae_fixture
    video = t["video"][None]  # (1, 3, T, H, W)
    latent = model.encode(video)
    assert latent.dtype == torch.float32
    assert latent.shape[2] == meta["frames"]["latent_frames"]
    assert max_diff(latent[0], t["latent"]) <= LATENT_TOL
    mu = model.encode(video, normalise=False)
    assert max_diff(mu[0], t["latent_unnormalised"]) <= LATENT_TOL * max(meta["latent_std"])


@pytest.mark.parametrize(
    ("latent_name", "decoded_name", "clamp"),
    [
        ("latent", "decoded", True),
        ("latent", "decoded_unclamped", False),
        ("random_latent", "decoded_from_random_latent", True),
    ],
)
def test_decode_parity(vae_fixture, latent_name, decoded_name, clamp):
    _, t, _, model = vae_fixture
    decoded = model.decode(t[latent_name][None], clamp=clamp)
    assert decoded.dtype == torch.float32
    assert max_diff(decoded[0], t[decoded_name]) <= DECODE_TOL
    if clamp:
        assert decoded.abs().max() <= 1.0


def test_decode_stream_concatenates_to_decode(vae_fixture):
    _, t, _, model = vae_fixture
    latent = t["random_latent"][None]
    pieces = list(model.decode_stream(latent))
    step = model.config.temporal_factor
    assert [p.shape[2] for p in pieces] == [1] + [step] * (latent.shape[2] - 1)
    assert torch.equal(torch.cat(pieces, dim=2), model.decode(latent))


def test_causal_chunking_on_a_longer_clip(vae_fixture):
    """Coding a prefix gives the prefix of the full result: the caches carry exactly the causal past."""
    _, t, _, model = vae_fixture
    step = model.config.temporal_factor
    _, h, w = t["video"].shape[1:]
    gen = torch.Generator().manual_seed(0)
    video = torch.rand(1, 3, 1 + 3 * step, h, w, generator=gen) * 2 - 1  # 4 latent frames
    latent = model.encode(video)
    assert latent.shape[2] == 4
    prefix = model.encode(video[:, :, : 1 + step])
    assert max_diff(prefix, latent[:, :, :2]) <= LATENT_TOL

    decoded = model.decode(latent, clamp=False)
    assert decoded.shape[2] == video.shape[2]
    decoded_prefix = model.decode(latent[:, :, :2], clamp=False)
    assert max_diff(decoded_prefix, decoded[:, :, : 1 + step]) <= DECODE_TOL


def _record_causal_convs(model: WanVAE) -> tuple[dict, list]:
    """Hooks every cached causal conv (time kernel > 1) to record its chunk inputs and outputs."""
    calls: dict[CausalConv3d, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    handles = []
    for module in model.modules():
        if isinstance(module, CausalConv3d) and module.kernel_size[0] > 1 and module.stride[0] == 1:

            def hook(mod, args, output):
                calls.setdefault(mod, []).append((args[0], output))

            handles.append(module.register_forward_hook(hook))
    return calls, handles


@pytest.mark.parametrize("direction", ["encode", "decode"])
def test_chunked_convs_equal_whole_sequence_convs(vae_fixture, direction):
    """Chunk by chunk, each causal conv must give what it gives on its whole input stream at once.

    This checks the cache contents (the last 2 input frames, topped up across 1-frame chunks) for every layer,
    over more chunks than the parity fixture has.
    """
    _, t, _, model = vae_fixture
    step = model.config.temporal_factor
    _, h, w = t["video"].shape[1:]
    gen = torch.Generator().manual_seed(1)
    calls, handles = _record_causal_convs(model)
    try:
        if direction == "encode":
            model.encode(torch.rand(1, 3, 1 + 4 * step, h, w, generator=gen) * 2 - 1)
        else:
            model.decode(
                torch.randn(
                    1,
                    model.config.z_dim,
                    5,
                    h // model.config.spatial_factor,
                    w // model.config.spatial_factor,
                    generator=gen,
                ),
                clamp=False,
            )
    finally:
        for handle in handles:
            handle.remove()
    assert calls
    with torch.no_grad():
        for conv, records in calls.items():
            assert len(records) >= 3  # several chunks went through this layer
            stream = torch.cat([x for x, _ in records], dim=2)
            chunked = torch.cat([y for _, y in records], dim=2)
            assert max_diff(chunked, conv(stream)) <= 1e-5


def test_decode_cache_stays_bounded(vae_fixture):
    """The cache has one fixed slot per causal layer and never holds more than CACHE_T frames per slot."""
    _, t, _, model = vae_fixture
    latent = t["random_latent"][None].repeat(1, 1, 3, 1, 1)  # more latent frames than the fixture
    cache = FeatureCache()
    sizes = []
    with torch.no_grad():
        for f in range(latent.shape[2]):
            cache.start_chunk()
            model.decoder(model.conv2(latent[:, :, f : f + 1]), cache)
            sizes.append(len(cache))
            assert cache.max_frames() <= CACHE_T
    assert len(set(sizes)) == 1, sizes


def test_batch_of_two_matches_single(vae_fixture):
    _, t, _, model = vae_fixture
    video = torch.stack([t["video"], t["video"].flip(-1)])  # (2, 3, T, H, W)
    latent = model.encode(video)
    assert max_diff(latent[1:], model.encode(video[1:])) <= LATENT_TOL
    assert max_diff(latent[:1, :], t["latent"][None]) <= LATENT_TOL


def test_bad_inputs_are_rejected(vae_fixture):
    _, t, _, model = vae_fixture
    video = t["video"][None]
    with pytest.raises(ValueError, match="frames"):
        model.encode(torch.cat([video, video[:, :, :1]], dim=2))  # T + 1 frames
    with pytest.raises(ValueError, match="divisible"):
        model.encode(video[:, :, :, :-1])
    with pytest.raises(ValueError, match="latent"):
        model.decode(t["latent"][None, :-1])
    with pytest.raises(ValueError, match="temperal_downsample"):
        VAEConfig(temperal_downsample=(True,))


def _smooth_video(h: int, w: int, frames: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return torch.stack(
        [
            torch.stack([torch.sin(3 * xx + 0.3 * t) * 0.8, torch.cos(2 * yy - 0.2 * t) * 0.7, xx * yy * 0.9])
            for t in range(frames)
        ],
        dim=1,
    )[None]  # (1, 3, T, H, W)


@pytest.mark.slow
def test_tiled_decode_is_exact_with_one_tile_and_close_with_overlap(vae_fixture):
    """One tile covering the latent is the untiled decode bit for bit. With several tiles the seams blend; the
    fixture's random-weight attention blocks mix the whole frame (trained ones barely do), so closeness is
    measured with them neutralised: on a 16x20 latent, mean |diff| 0.028 at tile 10 / overlap 4 and 0.011 (1.4
    uint8 steps) at tile 14 / overlap 6; it shrinks as tiles and overlaps grow."""
    import copy

    from multitalk.model.vae import AttentionBlock
    from multitalk.model.vae_tiling import VAETiles

    _, _, _, model = vae_fixture
    latent = model.encode(_smooth_video(128, 160, 1))  # (1, z, 1, 16, 20)
    untiled = model.decode(latent)
    one = torch.cat(list(model.decode_stream(latent, tiles=VAETiles(20, 8))), dim=2)
    assert torch.equal(one, untiled)

    local = copy.deepcopy(model)
    for module in local.decoder.modules():
        if isinstance(module, AttentionBlock):
            module.proj.weight.data.zero_()
            module.proj.bias.data.zero_()
    reference = local.decode(latent)
    errors = []
    for tile, overlap in ((10, 4), (14, 6)):
        tiled = torch.cat(list(local.decode_stream(latent, tiles=VAETiles(tile, overlap))), dim=2)
        assert tiled.shape == reference.shape
        errors.append((tiled - reference).abs().mean().item())
    assert errors[1] < errors[0] and errors[1] < 0.015, errors
