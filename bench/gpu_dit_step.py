"""The full-size MultiTalk DiT on one GPU: s/step, TFLOP/s, MFU, where the time goes, memory beyond the weights.

Builds `CONFIGS["multitalk-14b"].dit` (18.9 B parameters) on the meta device and materialises it on the GPU in bf16
with random weights (no checkpoint needed, nothing to download), then times sampling steps of a chunk (81 frames,
two persons by default) through the pipeline's own denoiser in these cases (`--cases`, comma list):

- `3pass`, `2pass`, `1pass`: official guidance (cond, drop_text, uncond), text guidance 1 (cond, drop_audio), and
  guidance off (cond alone, the `fast` preset), all passes of a step in one batched forward;
- `3pass-seq`: the 3 passes one forward at a time;
- `teacache`: 1 pass over `--teacache-steps` steps with TeaCache at `--teacache-threshold` (reports skipped steps
  and the mean s/step of the whole run);
- `fp8`: 1 pass with the blocks' linear weights in fp8 (`torch._scaled_mm` on sm89+, dequantised otherwise);
- `swap`: 1 pass with block swap, `--resident` blocks on the GPU and the rest prefetched from pinned host memory.

Per case: seconds per step (mean of `--steps` after `--warmup`), the DiT FLOPs of a step (from
`multitalk.generation.gpu_plan`, the same arithmetic `multitalk plan` uses), achieved TFLOP/s and MFU against the
card's dense bf16 (fp8 case: fp8) peak, the split of GPU time between linear layers (GEMM kernels), attention
kernels and the rest (from a torch.profiler trace of one step, by kernel name), and peak memory beyond the resident
weights. A last row decodes one chunk latent with a random full-size VAE, whole-frame and tiled, for its peak.

The figures go into `bench/RESULTS.md` (a marked section, replaced on re-runs). Targets (issue 11): 480p DiT
forward >= 45 % MFU in bf16; a `fast` chunk (4 steps x 1 pass + decode) <= 40 s on one H100/H200.

    .venv/bin/python bench/gpu_dit_step.py                          # 480p, all cases (about 5 min on an H100)
    .venv/bin/python bench/gpu_dit_step.py --resolution 720p --cases 1pass,fp8
    .venv/bin/python bench/gpu_dit_step.py --config tiny --device cpu --steps 1   # CPU smoke run of every path
    .venv/bin/python bench/gpu_dit_step.py --dry-run                  # shapes and FLOPs only (meta device)

See bench/README.md for running it on a bare GPU machine from carried wheels.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import math
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GiB = 2**30
RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- gpu_dit_step:begin -->", "<!-- gpu_dit_step:end -->"
CASES = ("3pass", "2pass", "1pass", "3pass-seq", "teacache", "fp8", "swap")
GUIDANCE = {"3pass": (5.0, 4.0), "2pass": (1.0, 4.0), "1pass": (1.0, 1.0)}
# device name fragment -> (dense bf16 TFLOP/s, dense fp8 TFLOP/s or None)
PEAKS = {
    "H200": (989.0, 1979.0),
    "H100": (989.0, 1979.0),
    "A100": (312.0, None),
    "L40S": (362.0, 733.0),
    "4090": (165.0, 330.0),
    "3090": (71.0, None),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", default="480p", choices=("480p", "720p"))
    parser.add_argument("--bucket", default=None, help="bucket key of the table (default: the one nearest h/w 0.5)")
    parser.add_argument("--frames", type=int, default=None, help="video frames per chunk (default: the config's)")
    parser.add_argument("--persons", type=int, default=2, choices=(1, 2))
    parser.add_argument("--steps", type=int, default=2, help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per case first")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma list of: {', '.join(CASES)}")
    parser.add_argument("--teacache-steps", type=int, default=8)
    parser.add_argument("--teacache-threshold", type=float, default=0.3)
    parser.add_argument("--resident", type=int, default=10, help="resident DiT blocks in the swap case")
    parser.add_argument("--attention", default="auto", help="attention backend (auto, flash3, flash2, sage, sdpa)")
    parser.add_argument("--no-profile", action="store_true", help="skip the linear/attention/rest split")
    parser.add_argument("--no-vae", action="store_true", help="skip the VAE decode row")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--config", default="multitalk-14b", help="model config (tiny: a CPU smoke run)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="markdown file to write the figures into")
    parser.add_argument("--dry-run", action="store_true", help="meta device only: shapes, tokens and FLOPs")
    args = parser.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown or not args.cases:
        parser.error(f"--cases takes {', '.join(CASES)}; got {args.cases}")
    return args


def bucket_hw(config, resolution: str, bucket: str | None) -> tuple[str, tuple[int, int]]:
    """The bucket (key, (h, w)): the one asked for, else the landscape two-shot nearest h/w = 0.5 of the table."""
    table = config.bucket_table(resolution)
    if bucket is None:
        bucket = min(table, key=lambda key: abs(float(key) - 0.5))
    if bucket not in table:
        raise SystemExit(f"no bucket {bucket!r} at {resolution} (buckets: {', '.join(table)})")
    h, w = table[bucket]
    return bucket, (int(h), int(w))


def build_dit(config, device: str):
    """The DiT in bf16 on `device` with random weights scaled to keep activations O(1)."""
    from multitalk.model.dit import MultiTalkDiT

    with torch.device("meta"):
        model = MultiTalkDiT(config.dit).to(torch.bfloat16)
    model = model.to_empty(device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2 and name.endswith("weight"):
                p.normal_(0.0, 1.0 / math.sqrt(p[0].numel()), generator=generator)
            elif p.dim() == 1 and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=generator)
    return model.eval().requires_grad_(False)


def conditions(config, frames: int, hw: tuple[int, int], persons: int, device: str):
    """Random conditions of one chunk with the real shapes (`ChunkConditions` as the pipeline builds them)."""
    from multitalk.generation.pipeline import ChunkConditions
    from multitalk.generation.sampler import condition_mask

    height, width = hw
    s = config.vae.spatial_factor
    h, w = height // s, width // s
    f_lat = 1 + (frames - 1) // config.vae.temporal_factor
    d = config.dit
    g = torch.Generator(device=device).manual_seed(1)

    def randn(*shape, dtype=torch.bfloat16):
        return torch.randn(shape, generator=g, device=device, dtype=torch.float32).to(dtype)

    mask = condition_mask(frames, 1, config.vae.temporal_factor)[None, :, :, None, None]
    mask = mask.expand(1, -1, -1, h, w).to(device, torch.bfloat16)
    masks = torch.zeros(3, h, w, device=device)
    masks[0, :, : w // 2] = 1
    masks[1, :, w // 2 :] = 1
    cond = ChunkConditions(
        context=randn(d.text_len, d.text_dim),
        context_null=randn(d.text_len, d.text_dim),
        clip_fea=randn(1, d.clip_tokens, d.clip_dim),
        y=torch.cat([mask, randn(1, d.out_dim, f_lat, h, w)], dim=1),
        audio=randn(persons, frames, d.audio_window, d.audio_blocks, d.audio_channels),
        masks=masks if persons == 2 else torch.ones(3, h, w, device=device),
        motion=None,
        reference=randn(1, 3, 1, height, width, dtype=torch.float32),
    )
    return cond, randn(d.out_dim, f_lat, h, w, dtype=torch.float32)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _kernel_split(model, cond, latent, guidance, batched: bool) -> dict[str, float]:
    """GPU time of one step by kernel class: GEMMs (linear), attention kernels, everything else."""
    from torch.profiler import ProfilerActivity, profile

    from multitalk.generation.pipeline import _Denoiser
    from multitalk.generation.sampler import Step, timesteps

    schedule = timesteps(2, 7.0).to(latent.device)
    denoise = _Denoiser(model, cond, None, batched)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        denoise(latent, Step(0, 2, schedule[:1], schedule[1:2]), guidance.passes)
        _sync(latent.device)
    split = {"linear": 0.0, "attention": 0.0, "rest": 0.0}
    for event in prof.key_averages():
        name = event.key.lower()
        us = getattr(event, "device_time_total", getattr(event, "cuda_time_total", 0.0))
        if any(k in name for k in ("flash", "fmha", "attention", "sage", "sdpa")):
            split["attention"] += us
        elif any(k in name for k in ("gemm", "xmma", "cutlass", "matmul", "scaled_mm", "sm90", "sm80_", "ampere")):
            split["linear"] += us
        else:
            split["rest"] += us
    total = sum(split.values()) or 1.0
    return {k: v / total for k, v in split.items()}


def run_case(args, case: str, model, cond, latent, flops_per_pass: int, peak_tflops) -> dict:
    from multitalk.generation.pipeline import _Denoiser
    from multitalk.generation.sampler import Guidance, Step, timesteps
    from multitalk.generation.teacache import TeaCache, TeaCacheSettings

    device = latent.device
    text, audio = GUIDANCE.get(case.removesuffix("-seq"), (1.0, 1.0))
    guidance = Guidance(text, audio)
    batched = not case.endswith("-seq")
    steps = args.teacache_steps if case == "teacache" else args.warmup + args.steps
    schedule = timesteps(steps, 7.0).to(device)
    teacache = (
        TeaCache(TeaCacheSettings(args.teacache_threshold, args.resolution), steps) if case == "teacache" else None
    )
    denoise = _Denoiser(model, cond, teacache, batched)
    weights = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(steps):
        step = Step(i, steps, schedule[i : i + 1], schedule[i + 1 : i + 2])
        _sync(device)
        start = time.perf_counter()
        out = denoise(latent, step, guidance.passes)
        _sync(device)
        if case == "teacache" or i >= args.warmup:
            times.append(time.perf_counter() - start)
        del out
    per_step = sum(times) / len(times)
    passes = len(guidance.passes)
    flops = flops_per_pass * passes
    peak = peak_tflops[1] if case == "fp8" and peak_tflops[1] else peak_tflops[0]
    achieved = flops / per_step / 1e12
    row = {
        "case": case,
        "passes": passes,
        "s_per_step": per_step,
        "pflop_per_step": flops / 1e15,
        "tflops": achieved,
        "mfu": achieved / peak if peak else float("nan"),
        "beyond_weights_gib": (torch.cuda.max_memory_allocated(device) - weights) / GiB if device.type == "cuda" else 0,
        "note": f"{len(teacache.skipped_steps)}/{steps} steps skipped" if teacache else "",
    }
    if device.type == "cuda" and not args.no_profile and case in ("1pass", "3pass", "fp8"):
        row["split"] = _kernel_split(model, cond, latent, guidance, batched)
    return row


def vae_row(args, config, hw: tuple[int, int], frames: int) -> list[str]:
    from multitalk.model.vae import WanVAE
    from multitalk.model.vae_tiling import VAETiles

    device = torch.device(args.device)
    with torch.device("meta"):
        vae = WanVAE(config.vae)
    vae = vae.to_empty(device=device)
    with torch.no_grad():
        for p in vae.parameters():
            p.normal_(0.0, 0.02)
    s = config.vae.spatial_factor
    latent = torch.randn(1, config.vae.z_dim, 1 + (frames - 1) // 4, hw[0] // s, hw[1] // s, device=device)
    rows = []
    for label, tiles in (("whole frames", None), ("tiled 64/16", VAETiles())):
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
        _sync(device)
        start = time.perf_counter()
        for _ in vae.decode_stream(latent, tiles=tiles):
            pass
        _sync(device)
        seconds = time.perf_counter() - start
        peak = (torch.cuda.max_memory_allocated(device) - base) / GiB if device.type == "cuda" else 0.0
        rows.append(f"| VAE decode, {label} | | {seconds:.2f} s / chunk | | | | {peak:.1f} | |")
    return rows


def write_results(path: Path, text: str) -> None:
    section = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    old = path.read_text() if path.exists() else "# Benchmark results\n\n"
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)
    new = pattern.sub(lambda _: section, old) if pattern.search(old) else old.rstrip() + "\n\n" + section
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from multitalk.generation.block_swap import BlockSwap
    from multitalk.generation.gpu_plan import chunk_tokens, dit_forward_flops, dit_sizes
    from multitalk.model.attention import select_backend
    from multitalk.model.configs import CONFIGS
    from multitalk.model.quantize import kernel_for, quantize_blocks

    config = CONFIGS[args.config]
    frames = args.frames or config.geometry.frame_num
    if (frames - 1) % config.vae.temporal_factor:
        raise SystemExit(f"--frames must be 1 + {config.vae.temporal_factor}n, got {frames}")
    config = dataclasses.replace(config, geometry=dataclasses.replace(config.geometry, frame_num=frames))
    bucket, hw = bucket_hw(config, args.resolution, args.bucket)
    tokens = chunk_tokens(config, hw, args.persons)
    flops = dit_forward_flops(config, tokens)
    sizes = dit_sizes(config)
    head = (
        f"{args.config}: {sizes.total / 1e9:.2f} B DiT parameters ({sizes.total * 2 / GiB:.1f} GiB bf16); "
        f"{args.resolution} bucket {bucket} = {hw[0]}x{hw[1]}, {frames} frames -> {tokens.video} tokens, "
        f"{args.persons} persons; {flops / 1e15:.3f} PFLOP per pass"
    )
    print(head, flush=True)
    if args.dry_run:
        print(f"cases: {', '.join(args.cases)}")
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: this benchmark needs a GPU (or --device cpu --config tiny)", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    peak = next((p for key, p in PEAKS.items() if key in name), (float("nan"), None))
    backend = select_backend(args.attention, device)
    start = time.perf_counter()
    model = build_dit(config, args.device)
    build_s = time.perf_counter() - start
    cond, latent = conditions(config, frames, hw, args.persons, args.device)
    results = []
    for case in [c for c in args.cases if c not in ("fp8", "swap")]:
        try:
            results.append(run_case(args, case, model, cond, latent, flops, peak))
        except torch.OutOfMemoryError:
            results.append({"case": case, "note": "out of memory"})
        print(results[-1], flush=True)
    if "swap" in args.cases:
        swap = BlockSwap(model.blocks, args.resident, device)
        row = run_case(args, "1pass", model, cond, latent, flops, peak)
        row.update(case=f"swap ({args.resident} resident)", note=f"{swap.copies} block copies")
        results.append(row)
        swap.remove()
        print(results[-1], flush=True)
    if "fp8" in args.cases:
        start = time.perf_counter()
        quantize_blocks(model.blocks, "fp8", device)
        row = run_case(args, "fp8", model, cond, latent, flops, peak)
        row["note"] = f"{kernel_for('fp8', device)}, quantised in {time.perf_counter() - start:.0f} s"
        results.append(row)
        print(results[-1], flush=True)
    del model
    gc.collect()
    vae = [] if args.no_vae else vae_row(args, config, hw, frames)
    table = [
        "| case | passes | s / step | PFLOP / step | TFLOP/s | MFU | peak beyond weights GiB | split lin/attn/rest |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "s_per_step" not in r:
            table.append(f"| {r['case']} | | {r['note']} | | | | | |")
            continue
        split = r.get("split")
        split_text = "/".join(f"{split[k]:.0%}" for k in ("linear", "attention", "rest")) if split else ""
        table.append(
            f"| {r['case']} {r['note']} | {r['passes']} | {r['s_per_step']:.2f} | {r['pflop_per_step']:.2f} | "
            f"{r['tflops']:.0f} | {r['mfu']:.0%} | {r['beyond_weights_gib']:.1f} | {split_text} |"
        )
    text = "\n".join(
        [
            "## MultiTalk DiT on one GPU (bench/gpu_dit_step.py)",
            "",
            f"- {datetime.date.today().isoformat()}, {name}, torch {torch.__version__}, attention `{backend}`, "
            f"DiT bf16 random weights built in {build_s:.0f} s",
            f"- {head}; mean of {args.steps} steps after {args.warmup} warm-up (TeaCache: all its steps)",
            "",
            *table,
            *vae,
        ]
    )
    write_results(args.results, text)
    print(text)
    print(f"written to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
