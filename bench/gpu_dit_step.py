"""Seconds per sampling step and peak GPU memory of the full-size MultiTalk DiT (for a GPU session).

Builds `CONFIGS["multitalk-14b"].dit` (18.9 B parameters) on the meta device, materialises it on the GPU in bf16
with random weights (no checkpoint needed), and times one sampling step of a two-person chunk (81 frames) at a
480p bucket with 3-pass guidance (cond, drop_text, uncond) through the pipeline's own denoiser, in two modes:

- `batched`: the three passes of a step as one forward of batch 3 (our default);
- `sequential`: one forward per pass (the official code's way, and our fallback when memory is short).

For each mode it reports seconds per step (mean over `--steps` timed steps after `--warmup`) and the peak GPU
memory allocated, and writes the figures into `bench/RESULTS.md` (its own marked section, replaced on re-runs).
Official published figure for comparison: about 35 s / step at 480p on one A100 (MODEL_SPEC.md).

Run on a GPU machine: `.venv/bin/python bench/gpu_dit_step.py [--bucket 0.50 --steps 3]`.
`--dry-run` builds the model on the meta device only and prints the shapes (runs anywhere).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import math
import re
import sys
import time
from pathlib import Path

import torch

MiB = 2**20
GiB = 2**30
RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- gpu_dit_step:begin -->", "<!-- gpu_dit_step:end -->"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", default="480p", choices=("480p", "720p"))
    parser.add_argument("--bucket", default="0.50", help="bucket key (h/w ratio) of the table; 0.50 = 448x896 at 480p")
    parser.add_argument("--frames", type=int, default=81, help="video frames per chunk (1 + 4n)")
    parser.add_argument("--persons", type=int, default=2, choices=(1, 2))
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per mode first")
    parser.add_argument("--text-tokens", type=int, default=120, help="true length of the prompt tokens")
    parser.add_argument("--modes", default="batched,sequential", help="comma list of: batched, sequential")
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--config", default="multitalk-14b", help="model config (tiny: a CPU smoke test of this script)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="markdown file to write the figures into")
    parser.add_argument("--dry-run", action="store_true", help="meta device only: shapes and token counts")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - {"batched", "sequential"})
    if unknown or not modes:
        parser.error(f"--modes takes batched and/or sequential, got {args.modes!r}")
    if (args.frames - 1) % 4:
        parser.error(f"--frames must be 1 + 4n, got {args.frames}")
    args.modes = modes
    return args


def build_dit(config: str, device: str):
    """The DiT in bf16 on `device` with random weights scaled to keep activations O(1)."""
    import torch

    from multitalk.model.configs import CONFIGS
    from multitalk.model.dit import MultiTalkDiT

    with torch.device("meta"):
        model = MultiTalkDiT(CONFIGS[config].dit).to(torch.bfloat16)
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


def conditions(args: argparse.Namespace, device: str):
    """Random conditions of one chunk with the real shapes (`ChunkConditions` as the pipeline builds them)."""
    import torch

    from multitalk.generation.pipeline import ChunkConditions
    from multitalk.generation.sampler import condition_mask
    from multitalk.model.configs import CONFIGS

    cfg = CONFIGS[args.config]
    height, width = cfg.bucket_table(args.resolution)[args.bucket]
    h, w = height // 8, width // 8
    f_lat = 1 + (args.frames - 1) // 4
    d = cfg.dit
    g = torch.Generator(device=device).manual_seed(1)
    bf16 = torch.bfloat16

    def randn(*shape, dtype=bf16):
        return torch.randn(shape, generator=g, device=device, dtype=torch.float32).to(dtype)

    mask = condition_mask(args.frames, 1)[None, :, :, None, None].expand(1, -1, -1, h, w).to(device, bf16)
    masks = torch.zeros(3, h, w, device=device)
    masks[0, int(h * 0.05) : int(h * 0.95), int(w / 2 * 0.05) : int(w / 2 * 0.95)] = 1
    masks[1, int(h * 0.05) : int(h * 0.95), w // 2 + int(w / 2 * 0.05) : w // 2 + int(w / 2 * 0.95)] = 1
    masks[2] = (masks[:2].sum(0) == 0).float()
    cond = ChunkConditions(
        context=randn(min(args.text_tokens, d.text_len), d.text_dim),
        context_null=randn(min(args.text_tokens + 40, d.text_len), d.text_dim),
        clip_fea=randn(1, d.clip_tokens, d.clip_dim),
        y=torch.cat([mask, randn(1, d.out_dim, f_lat, h, w)], dim=1),
        audio=randn(args.persons, args.frames, d.audio_window, d.audio_blocks, d.audio_channels),
        masks=masks if args.persons == 2 else torch.ones(3, h, w, device=device),
        motion=None,
        reference=randn(1, 3, 1, height, width, dtype=torch.float32),
    )
    latent = randn(d.out_dim, f_lat, h, w, dtype=torch.float32)
    tokens = f_lat * (h // 2) * (w // 2)
    return cond, latent, (height, width), tokens


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_mode(model, cond, latent, batched: bool, steps: int, warmup: int) -> dict:
    import torch

    from multitalk.generation.pipeline import _Denoiser
    from multitalk.generation.sampler import Guidance, Step, timesteps

    passes = Guidance(5.0, 4.0).passes
    schedule = timesteps(warmup + steps, 7.0).to(latent.device)
    denoise = _Denoiser(model, cond, None, batched, lambda: None)
    cuda = latent.device.type == "cuda"
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(warmup + steps):
        step = Step(i, warmup + steps, schedule[i : i + 1], schedule[i + 1 : i + 2])
        _sync(latent.device)
        start = time.perf_counter()
        out = denoise(latent, step, passes)
        _sync(latent.device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
        del out
    return {
        "seconds_per_step": sum(times) / len(times),
        "peak_allocated": torch.cuda.max_memory_allocated() if cuda else 0,
        "peak_reserved": torch.cuda.max_memory_reserved() if cuda else 0,
        "fell_back": batched and not denoise.batch,
    }


def write_results(path: Path, text: str) -> None:
    section = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    old = path.read_text() if path.exists() else "# Benchmark results\n\n"
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)
    new = pattern.sub(lambda _: section, old) if pattern.search(old) else old.rstrip() + "\n\n" + section
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from multitalk.model.attention import backend_for
    from multitalk.model.configs import CONFIGS
    from multitalk.model.dit import MultiTalkDiT

    if args.dry_run:
        with torch.device("meta"):
            model = MultiTalkDiT(CONFIGS[args.config].dit)
        params = sum(p.numel() for p in model.parameters())
        cfg = CONFIGS[args.config]
        height, width = cfg.bucket_table(args.resolution)[args.bucket]
        f_lat = 1 + (args.frames - 1) // 4
        tokens = f_lat * (height // 16) * (width // 16)
        print(
            f"dry run: {params / 1e9:.2f} B parameters ({params * 2 / GiB:.1f} GiB in bf16), {args.resolution} bucket "
            f"{args.bucket} = {height}x{width}, {args.frames} frames -> {tokens} tokens, {args.persons} persons, "
            f"modes {args.modes}"
        )
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: this benchmark needs a GPU (use --dry-run to check shapes)", file=sys.stderr)
        return 2

    build_start = time.perf_counter()
    model = build_dit(args.config, args.device)
    build_s = time.perf_counter() - build_start
    weights_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    cond, latent, (height, width), tokens = conditions(args, args.device)
    q = torch.empty(1, 1, 1, model.cfg.head_dim, device=args.device, dtype=torch.bfloat16)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    rows = []
    for mode in args.modes:
        try:
            r = time_mode(model, cond, latent, mode == "batched", args.steps, args.warmup)
            note = " (fell back to sequential: out of memory)" if r["fell_back"] else ""
            rows.append(
                f"| {mode} | {r['seconds_per_step']:.2f} | {r['peak_allocated'] / GiB:.1f} | "
                f"{r['peak_reserved'] / GiB:.1f} |{note}"
            )
        except torch.OutOfMemoryError:
            rows.append(f"| {mode} | out of memory | | |")
        print(rows[-1], flush=True)
    text = "\n".join(
        [
            f"## MultiTalk DiT ({args.config}): seconds per sampling step (bench/gpu_dit_step.py)",
            "",
            f"- {datetime.date.today().isoformat()}, {device_name}, torch {torch.__version__}, attention "
            f"backend `{backend_for(q)}`",
            f"- DiT bf16, random weights ({weights_bytes / GiB:.1f} GiB on the GPU, built in {build_s:.0f} s); "
            f"{args.resolution} bucket {args.bucket} = {height}x{width}, {args.frames} frames = {tokens} tokens, "
            f"{args.persons} persons, 3-pass guidance; mean of {args.steps} steps after {args.warmup} warm-up",
            "",
            "| passes | s / step | peak allocated GiB | peak reserved GiB |",
            "|---|---|---|---|",
            *rows,
            "",
            "Official figure: ~35 s / step, 48 GB (A100, 480p, two persons, one GPU).",
        ]
    )
    write_results(args.results, text)
    print(f"written to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
