"""The MultiTalk DiT against the official implementation (dit_single, dit_two, dit_null_audio), plus its parts:
3-D RoPE, L-RoPE, the chunked reference-attention map, batching of mixed person counts and the real key set.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from multitalk.model import rope
from multitalk.model.configs import get_config
from multitalk.model.dit import (
    DiTConfig,
    MultiTalkDiT,
    lrope_query_positions,
    reference_attention_map,
)

DIT_CASES = ["dit_single", "dit_two", "dit_null_audio"]


@pytest.fixture(scope="module")
def dit(load_parity) -> MultiTalkDiT:
    meta, weights = load_parity("dit_weights")
    model = MultiTalkDiT(DiTConfig.from_official(meta["config"])).eval()
    model.load_state_dict(weights, strict=True)  # raises on any missing or unexpected key
    return model


def _forward(model, tensors, capture=None, **overrides):
    args = dict(
        x=tensors["x"][None],
        t=tensors["t"],
        context=[tensors["context"]],
        clip_fea=tensors["clip_fea"],
        y=tensors["y"],
        audio=[tensors["audio"]],
        ref_target_masks=tensors["ref_target_masks"],
    )
    args.update(overrides)
    with torch.no_grad():
        return model(**args, capture=capture)


def _out_tol(reference: torch.Tensor) -> float:
    return 1e-5 * max(1.0, reference.abs().max().item())


@pytest.mark.parametrize("name", DIT_CASES)
def test_forward_matches_official(dit, load_parity, name):
    meta, tensors = load_parity(name)
    assert DiTConfig.from_official(meta["config"]) == dit.cfg
    out = _forward(dit, tensors)
    assert out.shape == tensors["out"].shape and out.dtype == torch.float32
    assert (out - tensors["out"]).abs().max().item() <= _out_tol(tensors["out"])


def test_two_person_lrope_intermediates_match_official(dit, load_parity):
    _, tensors = load_parity("dit_two")
    capture = {}
    _forward(dit, tensors, capture)
    assert capture["lrope_samples"].tolist() == [0]
    assert torch.equal(capture["token_ref_target_masks"][0], tensors["token_ref_target_masks"])
    ref_map = torch.stack([m[0] for m in capture["ref_attn_map"]])
    assert ref_map.shape == tensors["ref_attn_map"].shape
    assert (ref_map - tensors["ref_attn_map"]).abs().max().item() <= 1e-6
    q_pos = torch.stack([p[0] for p in capture["lrope_q_pos"]])
    assert (q_pos - tensors["lrope_q_pos"]).abs().max().item() <= 1e-4
    k_pos = torch.stack(capture["lrope_k_pos"])
    assert k_pos.shape == tensors["lrope_k_pos"].shape
    assert (k_pos - tensors["lrope_k_pos"]).abs().max().item() <= 1e-4
    classes = torch.stack([c[0] for c in capture["lrope_class"]])
    assert torch.equal(classes, tensors["lrope_class"])


def test_batch_with_mixed_person_counts_equals_per_sample(dit, load_parity):
    """cond (2 persons), drop-text (2 persons, other prompt, swapped masks, other t), uncond (zero audio, 1)."""
    _, two = load_parity("dit_two")
    _, null = load_parity("dit_null_audio")
    gen = torch.Generator().manual_seed(0)
    negative = torch.randn(dit.cfg.text_len, dit.cfg.text_dim, generator=gen)
    contexts = [two["context"], negative, negative]
    audios = [two["audio"], two["audio"], null["audio"]]
    masks = two["ref_target_masks"]
    per_sample_masks = torch.stack([masks, masks[[1, 0, 2]], masks])
    t = two["t"].reshape(1).repeat(3) * torch.tensor([1.0, 0.5, 1.0])
    x = two["x"][None].repeat(3, 1, 1, 1, 1)

    batched = _forward(dit, two, x=x, t=t, context=contexts, audio=audios, ref_target_masks=per_sample_masks)
    assert batched.shape == (3, *two["out"].shape[1:])
    for i in range(3):
        single = _forward(
            dit, two, t=t[i : i + 1], context=[contexts[i]], audio=[audios[i]], ref_target_masks=per_sample_masks[i]
        )
        assert (batched[i] - single[0]).abs().max().item() <= _out_tol(single), i
    assert (batched[0] - two["out"][0]).abs().max().item() <= _out_tol(two["out"])


def test_bf16_model_keeps_fp32_output_and_stays_close(dit, load_parity):
    _, tensors = load_parity("dit_two")
    model = MultiTalkDiT(dit.cfg).eval()
    model.load_state_dict(dit.state_dict())
    out = _forward(model.to(torch.bfloat16), tensors)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert ((out - tensors["out"]).norm() / tensors["out"].norm()).item() < 0.05


def test_two_persons_need_masks_and_audio_must_fit_the_latent(dit, load_parity):
    _, tensors = load_parity("dit_two")
    with pytest.raises(ValueError, match="ref_target_masks"):
        _forward(dit, tensors, ref_target_masks=None)
    with pytest.raises(ValueError, match=r"audio\[0\] must be"):
        _forward(dit, tensors, audio=[tensors["audio"][:, :-1]])


def test_real_size_state_dict_has_the_checkpoint_keys(parity_path):
    expected = json.loads((parity_path / "dit_14b_state_dict_shapes.json").read_text())
    with torch.device("meta"):
        model = MultiTalkDiT(get_config("multitalk-14b").dit)
    got = {key: list(value.shape) for key, value in model.state_dict().items()}
    assert sorted(got) == sorted(expected)
    assert got == {key: list(shape) for key, shape in expected.items()}


def test_reference_attention_map_chunks_equal_naive_and_ignore_odd_head():
    gen = torch.Generator().manual_seed(0)
    b, seq, heads, d, n_ref, groups = 2, 30, 5, 8, 10, 2
    q = torch.randn(b, seq, heads, d, generator=gen)
    k = torch.randn(b, n_ref, heads, d, generator=gen)
    masks = (torch.rand(b, 3, n_ref, generator=gen) > 0.5).float()
    masks[:, :, 0] = 1  # no empty class

    probs = torch.einsum("blhd,bnhd->bhln", q.double(), k.double()).div(math.sqrt(d)).softmax(-1)
    per_head = torch.einsum("bhln,bcn->bhcl", probs, masks.double()) / masks.double().sum(-1)[:, None, :, None]
    per_group = heads // groups
    naive = sum(per_head[:, g * per_group : (g + 1) * per_group].mean(1) for g in range(groups)) / groups

    for chunk in (1, 7 * n_ref * per_group * b, 10**9):
        got = reference_attention_map(q, k, masks, groups, chunk_elements=chunk)
        assert got.shape == (b, 3, seq)
        assert (got.double() - naive).abs().max() < 1e-6, chunk


def test_lrope_positions_follow_class_ranges():
    gen = torch.Generator().manual_seed(0)
    ref_map = torch.rand(1, 3, 50, generator=gen)
    positions, classes = lrope_query_positions(ref_map, (0.0, 4.0), (20.0, 24.0), 12.0)
    assert torch.equal(classes, ref_map.argmax(1))
    assert ((positions[classes == 0] >= 0) & (positions[classes == 0] <= 4)).all()
    assert ((positions[classes == 1] >= 20) & (positions[classes == 1] <= 24)).all()
    assert (positions[classes == 2] == 12).all()
    top = ref_map[0, 0].argmax()
    if classes[0, top] == 0:
        assert abs(positions[0, top].item() - 4.0) < 1e-5


def test_lrope_rotates_adjacent_pairs():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 3, 8, generator=gen)
    pos = torch.rand(2, 5, generator=gen) * 24
    out = rope.apply_lrope(x, pos)
    inv = 10000.0 ** (-torch.arange(0, 8, 2, dtype=torch.float64) / 8)
    ang = pos.double()[:, :, None, None] * inv  # (B, L, 1, 4)
    x0, x1 = x.double()[..., 0::2], x.double()[..., 1::2]
    expected = torch.stack([x0 * ang.cos() - x1 * ang.sin(), x0 * ang.sin() + x1 * ang.cos()], -1).flatten(-2)
    assert (out.double() - expected).abs().max() < 1e-5


def test_rope_3d_axis_split_and_rotation(monkeypatch):
    assert rope.rope_axis_pairs(128) == (22, 21, 21)  # 44 / 42 / 42 values for the 14B head dim
    head_dim, grid, theta = 16, (2, 3, 4), 10000.0
    pairs = rope.rope_axis_pairs(head_dim)
    freqs = rope.rope_grid_freqs(rope.rope_angle_tables(head_dim, 8, theta), grid)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, math.prod(grid), 2, head_dim, generator=gen)

    expected = torch.empty(x.shape, dtype=torch.float64)
    for token in range(math.prod(grid)):
        coords = (token // (grid[1] * grid[2]), (token // grid[2]) % grid[1], token % grid[2])
        angles = []
        for coord, n in zip(coords, pairs, strict=True):
            angles += [coord / theta ** (2 * j / (2 * n)) for j in range(n)]
        ang = torch.tensor(angles, dtype=torch.float64)
        x0, x1 = x[0, token].double()[:, 0::2], x[0, token].double()[:, 1::2]
        rotated = torch.stack([x0 * ang.cos() - x1 * ang.sin(), x0 * ang.sin() + x1 * ang.cos()], -1)
        expected[0, token] = rotated.flatten(-2)

    whole = rope.apply_rope_3d(x, freqs)
    assert (whole.double() - expected).abs().max() < 1e-6
    monkeypatch.setattr(rope, "_ROPE_CHUNK_PAIRS", 5)  # forces one-token chunks
    assert torch.equal(rope.apply_rope_3d(x, freqs), whole)
