"""LoRA merging on a tiny DiT: every key format, alpha / rank scaling, full deltas and the error messages."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

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


def test_unmatched_keys_are_one_warning_or_with_strict_an_error(dit, caplog):
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
        merge_lora(dit, lora, strict=True)
    message = str(info.value)
    assert "2 LoRA key(s)" in message
    assert "blocks.7.self_attn.q.lora_down.weight" in message and "lora_te_text_model" in message
    assert all(torch.equal(before[k], v) for k, v in dit.state_dict().items())

    with caplog.at_level(logging.WARNING, logger="multitalk.model.lora"):
        changed = merge_lora(dit, lora)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 LoRA key(s)" in warnings[0].getMessage()
    assert "lora_te_text_model" in warnings[0].getMessage()
    assert changed == ["blocks.0.self_attn.q.weight"]
    torch.testing.assert_close(
        dit.blocks[0].self_attn.q.weight, _expected(before["blocks.0.self_attn.q.weight"], down, up, 1.0)
    )


def test_lightx2v_style_file_with_diff_m_and_modulation_diffs(dit, tmp_path):
    """The lightx2v StepDistill-CfgDistill layout: lora_down/up + alpha, diff / diff_b, blocks.N.diff_m and
    head.modulation.diff, all under `diffusion_model.`."""
    before = _params(dit)
    g = torch.Generator().manual_seed(11)
    lora: dict[str, torch.Tensor] = {}
    expected = dict(before)
    for n in range(2):
        for name in ("self_attn.q", "cross_attn.k_img", "ffn.2"):
            w = before[f"blocks.{n}.{name}.weight"]
            down = torch.randn(RANK, w.shape[1], generator=g)
            up = torch.randn(w.shape[0], RANK, generator=g)
            lora[f"diffusion_model.blocks.{n}.{name}.lora_down.weight"] = down
            lora[f"diffusion_model.blocks.{n}.{name}.lora_up.weight"] = up
            lora[f"diffusion_model.blocks.{n}.{name}.alpha"] = torch.tensor(8.0)
            expected[f"blocks.{n}.{name}.weight"] = _expected(w, down, up, 0.75 * 8.0 / RANK)
            bias = before[f"blocks.{n}.{name}.bias"]
            lora[f"diffusion_model.blocks.{n}.{name}.diff_b"] = d_b = torch.randn(bias.shape, generator=g)
            expected[f"blocks.{n}.{name}.bias"] = bias + 0.75 * d_b
        norm = before[f"blocks.{n}.norm3.weight"]
        lora[f"diffusion_model.blocks.{n}.norm3.diff"] = d_n = torch.randn(norm.shape, generator=g)
        expected[f"blocks.{n}.norm3.weight"] = norm + 0.75 * d_n
        mod = before[f"blocks.{n}.modulation"]
        lora[f"diffusion_model.blocks.{n}.diff_m"] = d_m = torch.randn(mod.shape, generator=g)
        expected[f"blocks.{n}.modulation"] = mod + 0.75 * d_m
    head_mod = before["head.modulation"]
    lora["diffusion_model.head.modulation.diff"] = d_h = torch.randn(head_mod.shape, generator=g)
    expected["head.modulation"] = head_mod + 0.75 * d_h
    path = tmp_path / "lightx2v_rank4.safetensors"
    save_file(lora, str(path))
    changed = merge_lora(dit, path, 0.75, strict=True)
    assert "blocks.1.modulation" in changed and "head.modulation" in changed
    after = dit.state_dict()
    for key in before:
        torch.testing.assert_close(after[key], expected[key], rtol=1e-5, atol=1e-5, msg=key)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc peak-RSS accounting")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_merging_needs_about_one_layer_of_extra_memory(tmp_path, dtype):
    """Peak extra host memory while merging a LoRA over 6 big layers stays <= 1.5 x one layer's (fp32) delta."""
    size = 1536  # each layer: 1536 x 1536 fp32 = 9 MiB; all deltas together would be 54 MiB
    model = nn.ModuleDict({f"l{i}": nn.Linear(size, size, bias=False) for i in range(6)}).to(dtype)
    g = torch.Generator().manual_seed(0)
    lora = {}
    for i in range(6):
        lora[f"diffusion_model.l{i}.lora_down.weight"] = torch.randn(64, size, generator=g)
        lora[f"diffusion_model.l{i}.lora_up.weight"] = torch.randn(size, 64, generator=g)
    path = tmp_path / "big.safetensors"
    save_file(lora, str(path))
    expected = {
        f"l{i}": model[f"l{i}"].weight.detach()
        + lora[f"diffusion_model.l{i}.lora_up.weight"] @ lora[f"diffusion_model.l{i}.lora_down.weight"]
        for i in range(6)
    }
    del lora
    gc.collect()
    layer_kib = size * size * 4 // 1024
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current RSS
    start = _rss_kib("VmRSS")
    merge_lora(model, path)
    extra = _rss_kib("VmHWM") - start
    assert extra <= 1.5 * layer_kib, f"merging took {extra} KiB beyond the model, one layer's delta is {layer_kib} KiB"
    for name, weight in expected.items():
        torch.testing.assert_close(model[name].weight.detach(), weight.to(dtype), rtol=1e-4, atol=1e-3)


def test_a_torch_pickle_lora_merges_too(dit, tmp_path):
    q = dit.blocks[1].self_attn.v.weight
    down, up = _pair(q.shape[0], (q.shape[1],), 12)
    path = tmp_path / "old.pt"
    torch.save(
        {"lora_unet_blocks_1_self_attn_v.lora_down.weight": down, "lora_unet_blocks_1_self_attn_v.lora_up.weight": up},
        path,
    )
    before = q.detach().clone()
    assert merge_lora(dit, path, strict=True) == ["blocks.1.self_attn.v.weight"]
    torch.testing.assert_close(dit.blocks[1].self_attn.v.weight, _expected(before, down, up, 1.0))


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
    updates, unmatched = parse_lora(["diffusion_model.blocks.0.self_attn.q.lora_A.weight"], dit)
    assert [u.module for u in updates] == ["blocks.0.self_attn.q"] and unmatched == []


def test_merge_keeps_a_bf16_parameter_bf16(dit):
    dit = dit.to(torch.bfloat16)
    q = dit.blocks[0].self_attn.q.weight
    down, up = _pair(q.shape[0], (q.shape[1],), 8)
    before = q.detach().float().clone()
    merge_lora(dit, {"blocks.0.self_attn.q.lora_down.weight": down, "blocks.0.self_attn.q.lora_up.weight": up})
    assert dit.blocks[0].self_attn.q.weight.dtype == torch.bfloat16
    # formed in fp32, rounded once into bf16
    torch.testing.assert_close(
        dit.blocks[0].self_attn.q.weight.float(), _expected(before, down, up, 1.0).to(torch.bfloat16).float()
    )
