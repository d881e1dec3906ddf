"""Error of fp8 / int8 DiT weights against the unquantised model, on the parity DiT and the tiny pipeline (CPU).

Run by hand: `PYTHONPATH=. python bench/quantization_error.py`. Prints relative L2 errors:
- parity: one forward of the official tiny DiT (`shared/parity/dit_{single,two}`) in fp32, bf16, bf16 + fp8 and
  bf16 + int8 block weights, each against the official fp32 output stored in the fixture;
- pipeline: the final latent of the first chunk of the tiny release (3 steps), fp8 / int8 against fp32 weights.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def parity() -> None:
    from multitalk.model.dit import DiTConfig, MultiTalkDiT
    from multitalk.model.quantize import quantize_blocks

    parity_dir = ROOT.parent / "shared" / "parity"
    meta = json.loads((parity_dir / "dit_weights.json").read_text())
    base = MultiTalkDiT(DiTConfig.from_official(meta["config"]))
    base.load_state_dict(load_file(str(parity_dir / "dit_weights.safetensors")))
    base.eval()
    for case in ("dit_single", "dit_two"):
        t = load_file(str(parity_dir / f"{case}.safetensors"))
        row = []
        for name, dtype, mode in (
            ("fp32", torch.float32, "none"),
            ("bf16", torch.bfloat16, "none"),
            ("bf16+fp8", torch.bfloat16, "fp8"),
            ("bf16+int8", torch.bfloat16, "int8"),
        ):
            model = copy.deepcopy(base).to(dtype)
            quantize_blocks(model.blocks, mode, "cpu")
            with torch.no_grad():
                out = model(
                    t["x"][None], t["t"], [t["context"]], t["clip_fea"], t["y"], [t["audio"]], t.get("ref_target_masks")
                )
            row.append(f"{name} {rel(out[0], t['out']):.2e}")
        print(f"parity {case}: " + ", ".join(row))


def pipeline() -> None:
    import soundfile as sf

    from multitalk.generation.pipeline import ChunkAudio, MultiTalkPipeline, SamplingSettings, SceneSpec
    from multitalk.generation.runtime import RuntimeOptions
    from multitalk.generation.streaming import audio_window, plan_chunks
    from multitalk.model.configs import CONFIGS
    from multitalk.testing.tiny_release import write_tiny_release, write_tiny_scene

    settings = SamplingSettings(steps=3)
    with tempfile.TemporaryDirectory() as tmp:
        release = write_tiny_release(Path(tmp) / "w", CONFIGS["tiny"])
        scene = write_tiny_scene(Path(tmp) / "s", 40, persons=2, seed=3)
        spec = SceneSpec(scene.image, "two friends talk", ("left", "right"), ("a", "b"), "480p", 7)
        latents = {}
        for mode in ("none", "fp8", "int8"):
            pipe = MultiTalkPipeline(release, "tiny", runtime=RuntimeOptions(quantize=mode))
            chunk = plan_chunks(40, CONFIGS["tiny"].geometry)[0]
            start, end = chunk.audio_window(pipe.audio_margin_frames)
            tracks = [sf.read(p, dtype="float32")[0] for p in scene.tracks]
            audio = ChunkAudio(tuple(audio_window(tr, start, end) for tr in tracks), start)
            cond = pipe.conditions(spec, chunk, audio, None, settings)
            latents[mode] = pipe.sample_latent(cond, spec.seed, 0, settings, "480p")
        print(
            "pipeline tiny, first chunk latent vs fp32: "
            f"fp8 {rel(latents['fp8'], latents['none']):.2e}, int8 {rel(latents['int8'], latents['none']):.2e}"
        )


if __name__ == "__main__":
    torch.manual_seed(0)
    parity()
    pipeline()
