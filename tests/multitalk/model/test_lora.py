"""LoRA merging on a tiny DiT: every key format, alpha / rank scaling, full deltas and the error messages."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from multitalk.model.configs import CONFIGS
from multitalk.model.dit import MultiTalkDiT
from multitalk.model.lora import LoraError, LoraSpec, merge_lora, parse_lora

RANK = 4


@pytest.fixture
def dit() -> MultiTalkDiT:
    torch.manual_seed(0)
    return MultiTalkDiT(CONFIGS["tiny"].dit).eval()


def _pair(out_features: int, in_shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    down = torch.randn((RANK, *in_shape), generator=g)  # A
    up = torch.randn((out_features, RANK, *([1] * (len(in_shape) - 1))), generator=g)  # B
    return down, up


def _expected(weight: torch.Tensor, down: torch.Tensor, up: torch.Tensor, factor: float) -> torch.Tensor:
    return weight + factor * (up.flatten(1) @ down.flatten(1)).reshape(weight.shape)


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_kohya_keys_with_alpha_merge_w_plus_scale_alpha_over_rank_b_a(dit):
    before = _params(dit)
    q = dit.blocks[0].self_attn.q.weight
    down_q, up_q = _pair(q.shape[0], (q.shape[1],), 1)
    conv = dit.patch_embedding.weight  # (dim, in, 1, 2, 2): a convolution LoRA
    down_c, up_c = _pair(conv.shape[0], tuple(conv.shape[1:]), 2)
    lora = {
        "lora_unet_blocks_0_self_attn_q.lora_down.weight": down_q,
        "lora_unet_blocks_0_self_attn_q.lora_up.weight": up_q,
        "lora_unet_blocks_0_self_attn_q.alpha": torch.tensor(2.0),
        "lora_unet__patch_embedding.lora_down.weight": down_c,  # the double-underscore variant
        "lora_unet__patch_embedding.lora_up.weight": up_c,
        "lora_unet__patch_embedding.alpha": torch.tensor(8.0),
    }
    changed = merge_lora(dit, lora, scale=0.5)
    assert sorted(changed) == ["blocks.0.self_attn.q.weight", "patch_embedding.weight"]
    after = dit.state_dict()
    torch.testing.assert_close(
        after["blocks.0.self_attn.q.weight"],
        _expected(before["blocks.0.self_attn.q.weight"], down_q, up_q, 0.5 * 2 / 4),
    )
    torch.testing.assert_close(
        after["patch_embedding.weight"], _expected(before["patch_embedding.weight"], down_c, up_c, 0.5 * 8 / 4)
    )
    untouched = [k for k in before if k not in changed]
    assert all(torch.equal(before[k], after[k]) for k in untouched)


def test_official_and_peft_keys_without_alpha_use_factor_one(dit):
    before = _params(dit)
    ffn = dit.blocks[1].ffn[0].weight
    k_img = dit.blocks[0].cross_attn.k_img.weight
    down_f, up_f = _pair(ffn.shape[0], (ffn.shape[1],), 3)
    down_k, up_k = _pair(k_img.shape[0], (k_img.shape[1],), 4)
    lora = {
        "diffusion_model.blocks.1.ffn.0.lora_down.weight": down_f,  # official MultiTalk / ComfyUI
        "diffusion_model.blocks.1.ffn.0.lora_up.weight": up_f,
        "transformer.blocks.0.cross_attn.k_img.lora_A.default.weight": down_k,  # PEFT with an adapter name
        "transformer.blocks.0.cross_attn.k_img.lora_B.default.weight": up_k,
    }
    merge_lora(dit, lora, scale=1.5)
    after = dit.state_dict()
    torch.testing.assert_close(
        after["blocks.1.ffn.0.weight"], _expected(before["blocks.1.ffn.0.weight"], down_f, up_f, 1.5)
    )
    torch.testing.assert_close(
        after["blocks.0.cross_attn.k_img.weight"],
        _expected(before["blocks.0.cross_attn.k_img.weight"], down_k, up_k, 1.5),
    )


@pytest.mark.parametrize(
    ("diffusers_path", "official"),
    [
        ("blocks.0.attn1.to_q", "blocks.0.self_attn.q"),
        ("blocks.1.attn1.to_out.0", "blocks.1.self_attn.o"),
        ("blocks.0.attn2.add_k_proj", "blocks.0.cross_attn.k_img"),
        ("blocks.1.attn2.to_v", "blocks.1.cross_attn.v"),
        ("blocks.0.ffn.net.0.proj", "blocks.0.ffn.0"),
        ("blocks.1.ffn.net.2", "blocks.1.ffn.2"),
        ("condition_embedder.time_proj", "time_projection.1"),
        ("proj_out", "head.head"),
    ],
)
def test_diffusers_native_module_names_map_to_the_official_ones(dit, diffusers_path, official):
    target = dict(dit.named_modules())[official].weight
    down, up = _pair(target.shape[0], (target.shape[1],), 5)
    before = target.detach().clone()
    changed = merge_lora(
        dit,
        {
            f"diffusion_model.{diffusers_path}.lora_A.weight": down,
            f"diffusion_model.{diffusers_path}.lora_B.weight": up,
        },
    )
    assert changed == [f"{official}.weight"]
    torch.testing.assert_close(dict(dit.named_modules())[official].weight, _expected(before, down, up, 1.0))


def test_full_weight_and_bias_deltas(dit):
    norm = dit.blocks[0].self_attn.norm_q.weight
    bias = dit.head.head.bias
    before_norm, before_bias = norm.detach().clone(), bias.detach().clone()
    d_norm, d_bias = torch.randn_like(norm), torch.randn_like(bias)
    merge_lora(
        dit,
        {"diffusion_model.blocks.0.self_attn.norm_q.diff": d_norm, "diffusion_model.head.head.diff_b": d_bias},
        0.25,
    )
    torch.testing.assert_close(dit.blocks[0].self_attn.norm_q.weight, before_norm + 0.25 * d_norm)
    torch.testing.assert_close(dit.head.head.bias, before_bias + 0.25 * d_bias)


def test_unmatched_keys_are_named_and_nothing_changes(dit):
    before = _params(dit)
    q = dit.blocks[0].self_attn.q.weight
    down, up = _pair(q.shape[0], (q.shape[1],), 6)
    lora = {
        "diffusion_model.blocks.0.self_attn.q.lora_down.weight": down,
        "diffusion_model.blocks.0.self_attn.q.lora_up.weight": up,
        "diffusion_model.blocks.7.self_attn.q.lora_down.weight": down,  # no block 7 in the tiny model
        "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": down,  # a text-encoder LoRA key
    }
    with pytest.raises(LoraError) as info:
        merge_lora(dit, lora)
    message = str(info.value)
    assert "2 LoRA key(s)" in message
    assert "blocks.7.self_attn.q.lora_down.weight" in message and "lora_te_text_model" in message
    assert all(torch.equal(before[k], v) for k, v in dit.state_dict().items())


def test_shape_mismatch_and_half_pairs_are_errors(dit):
    with pytest.raises(LoraError, match=r"delta of shape \[32, 16\].*of shape \[32, 32\]"):
        merge_lora(
            dit,
            {
                "diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.randn(RANK, 16),
                "diffusion_model.blocks.0.self_attn.q.lora_up.weight": torch.randn(32, RANK),
            },
        )
    with pytest.raises(LoraError, match="only half of a pair"):
        merge_lora(dit, {"diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.randn(RANK, 32)})


def test_merge_from_a_file_and_the_spec_fingerprint(dit, tmp_path):
    q = dit.blocks[0].self_attn.q.weight
    down, up = _pair(q.shape[0], (q.shape[1],), 7)
    path = tmp_path / "distill.safetensors"
    save_file(
        {
            "diffusion_model.blocks.0.self_attn.q.lora_A.weight": down,
            "diffusion_model.blocks.0.self_attn.q.lora_B.weight": up,
        },
        str(path),
    )
    before = q.detach().clone()
    merge_lora(dit, path, scale=2.0)
    torch.testing.assert_close(dit.blocks[0].self_attn.q.weight, _expected(before, down, up, 2.0))
    assert LoraSpec(path, 1.0).fingerprint() != LoraSpec(path, 0.5).fingerprint()
    assert LoraSpec(path, 1.0).fingerprint() == LoraSpec(path, 1.0).fingerprint()
    assert [u.module for u in parse_lora({"diffusion_model.blocks.0.self_attn.q.lora_A.weight": down}, dit)] == [
        "blocks.0.self_attn.q"
    ]


def test_merge_keeps_a_bf16_parameter_bf16(dit):
    dit = dit.to(torch.bfloat16)
    q = dit.blocks[0].self_attn.q.weight
    down, up = _pair(q.shape[0], (q.shape[1],), 8)
    before = q.detach().float().clone()
    merge_lora(dit, {"blocks.0.self_attn.q.lora_down.weight": down, "blocks.0.self_attn.q.lora_up.weight": up})
    assert dit.blocks[0].self_attn.q.weight.dtype == torch.bfloat16
    torch.testing.assert_close(
        dit.blocks[0].self_attn.q.weight.float(), _expected(before, down, up, 1.0).to(torch.bfloat16).float()
    )
