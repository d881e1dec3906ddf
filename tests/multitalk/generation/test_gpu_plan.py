"""`multitalk plan` arithmetic: parameter counts from the meta-device model, FLOPs checked against a counted forward."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from multitalk.generation import gpu_plan as P
from multitalk.model import dit as dit_module
from multitalk.model.configs import get_config
from multitalk.model.dit import MultiTalkDiT

REPO = Path(__file__).parents[3]


def test_parameter_counts_are_the_meta_models():
    config = get_config("multitalk-14b")
    sizes = P.dit_sizes(config)
    with torch.device("meta"):
        model = MultiTalkDiT(config.dit)
    assert sizes.total == sum(p.numel() for p in model.parameters()) == P.component_params(config)["dit"]
    assert sizes.per_block * config.dit.num_layers == sizes.blocks
    assert 18.8e9 < sizes.total < 19.0e9  # the released DiT: Wan 14B + the audio adapter
    assert sizes.block_linear / sizes.total > 0.98  # what fp8 / int8 shrink


def test_forward_flops_equal_a_counted_forward_of_the_tiny_dit(monkeypatch):
    """Linear FLOPs against torch's FlopCounterMode on a real forward; attention FLOPs counted call by call."""
    config = get_config("tiny")
    torch.manual_seed(0)
    model = MultiTalkDiT(config.dit).eval()
    f, h, w, persons = 3, 8, 12, 2
    attention_flops = []
    original = dit_module.attention

    def counting(q, k, v, **kwargs):
        attention_flops.append(4 * q.shape[0] * q.shape[1] * k.shape[1] * q.shape[2] * q.shape[3])
        return original(q, k, v, **kwargs)

    monkeypatch.setattr(dit_module, "attention", counting)
    frames = 1 + config.vae.temporal_factor * (f - 1)
    masks = torch.zeros(3, h, w)
    masks[0, :, : w // 2] = 1
    masks[1, :, w // 2 :] = 1
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(
            torch.randn(1, config.dit.out_dim, f, h, w),
            torch.tensor([500.0]),
            [torch.randn(config.text_len, config.dit.text_dim)],
            torch.randn(1, config.dit.clip_tokens, config.dit.clip_dim),
            torch.randn(1, config.dit.in_dim - config.dit.out_dim, f, h, w),
            [torch.randn(persons, frames, config.dit.audio_window, config.dit.audio_blocks, config.dit.audio_channels)],
            masks,
        )
    counts = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    counted_linear = counts["aten.addmm"] + counts.get("aten.mm", 0) + counts["aten.convolution"]
    tokens = P.Tokens(f * (h // 2) * (w // 2), f, config.text_len, config.dit.clip_tokens, persons * 4)
    split = P.dit_forward_split(config, tokens)
    assert split["attention"] == sum(attention_flops)
    assert abs(split["linear"] - counted_linear) / counted_linear < 0.01  # the time embedding is left out


def test_the_released_model_at_480p_matches_the_issue_figures():
    config = get_config("multitalk-14b")
    tokens = P.chunk_tokens(config, (448, 896), persons=2)
    assert tokens.video == 21 * 28 * 56
    flops = P.dit_forward_flops(config, tokens)
    assert 1.7e15 < flops < 2.0e15  # ≈ 1.86 PFLOP per two-person 81-frame forward (issue 11)
    modes = {m.mode: m for m in P.memory_modes(config, P.card("4090"), (448, 896), 2, 1, "fp8")}
    assert not modes["none"].fits and modes["sequential"].fits and modes["blocks"].fits


def test_unknown_card_names_the_known_ones():
    with pytest.raises(ValueError, match="H200, H100, A100-80, A100-40, L40S, 4090, 3090"):
        P.card("v100")


@pytest.mark.slow
def test_plan_command_prints_the_table():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "plan",
            str(REPO / "scripts_yaml" / "long_conversation.yaml"),
            "--gpu",
            "h100",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "multitalk-14b on H100" in out and "18.88 B params" in out and "total" in out
    assert "sequential" in out and "Traceback" not in out + result.stderr
