"""Several GPUs: seconds per sampling step of one scene across 1/2/4/8 ranks, and scenes-in-parallel throughput.

Two questions decide how to lay out a multi-GPU machine (README, "Workers on GPU machines"):

1. **One scene wide**: how much faster is one sampling step when N ranks share it (guidance groups x Ulysses
   sequence ranks, `multitalk.distributed`)? For each N in `--ranks` the script spawns N processes (NCCL on
   GPUs), each builds the full DiT with random weights on its own GPU, and times `--steps` steps of the real
   parallel denoiser on one two-person 81-frame chunk; speedup = t(1) / t(N). Target: >= 5.5x on 8 GPUs.
2. **Scenes in parallel**: N processes each time their own single-GPU steps at the same moment (no collectives;
   what N one-GPU workers do); throughput = N / t, efficiency = throughput / (N / t(1)). Target: >= 0.9.

Figures go to `bench/RESULTS.md` (their own marked section). `--dry-run` runs the same code with the tiny
config on CPU processes joined by gloo (2 ranks by default): it checks the script end to end, its seconds mean
nothing. No multi-GPU machine was available when this was written: only dry-run figures exist so far.

Run on a GPU machine: `.venv/bin/python bench/bench_multi_gpu.py --ranks 1,2,4,8 [--two-pass] [--bucket 0.50]`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # gpu_dit_step's model and condition builders

RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- bench_multi_gpu:begin -->", "<!-- bench_multi_gpu:end -->"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", default=None, help="comma list of rank counts (default 1,2,4,8; dry run 1,2)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--resolution", default="480p", choices=("480p", "720p"))
    parser.add_argument("--bucket", default=None, help="bucket key (h/w ratio); default 0.50 (448x896 at 480p)")
    parser.add_argument("--frames", type=int, default=None, help="video frames per chunk (default: the config's)")
    parser.add_argument("--persons", type=int, default=2, choices=(1, 2))
    parser.add_argument("--text-tokens", type=int, default=120)
    parser.add_argument("--two-pass", action="store_true", help="text guidance 1 (distilled LoRA): 2 passes a step")
    parser.add_argument("--layout", default=None, help="fixed GxS for every N (e.g. 2x4); default: auto per N")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--dry-run", action="store_true", help="tiny config, CPU processes, gloo")
    args = parser.parse_args(argv)
    args.config = "tiny" if args.dry_run else "multitalk-14b"
    args.ranks = [int(n) for n in (args.ranks or ("1,2" if args.dry_run else "1,2,4,8")).split(",")]
    from multitalk.model.configs import CONFIGS

    cfg = CONFIGS[args.config]
    args.frames = args.frames or cfg.geometry.frame_num
    args.bucket = args.bucket or "0.50"
    if (args.frames - 1) % 4:
        parser.error(f"--frames must be 1 + 4n, got {args.frames}")
    return args


def _rank(rank: int, world: int, args: argparse.Namespace, mode: str, out: str) -> None:
    """One rank: build the DiT and the chunk, time the steps, write this rank's seconds per step."""
    import torch.distributed as dist
    from gpu_dit_step import build_dit, conditions

    from multitalk.distributed.guidance_parallel import GuidanceParallelDenoiser
    from multitalk.distributed.mesh import ParallelLayout, ProcessMesh
    from multitalk.distributed.sampling import ShardedDenoiser
    from multitalk.generation.sampler import Guidance, Step, timesteps

    device = f"cuda:{rank}" if not args.dry_run else "cpu"
    if not args.dry_run:
        torch.cuda.set_device(rank)
    model = build_dit(args.config, device)
    if args.dry_run:
        model = model.float()
    cond, latent, _, tokens = conditions(args, device)
    if args.dry_run:
        cond = type(cond)(**{k: None if v is None else v.float() for k, v in vars(cond).items()})
    guidance = Guidance(1.0 if args.two_pass else 5.0, 4.0)
    passes = guidance.passes
    if mode == "wide":
        if args.layout:
            g, s = (int(v) for v in args.layout.lower().split("x"))
            layout = ParallelLayout(g, s)
        else:
            layout = ParallelLayout.auto(world, len(passes), model.cfg.num_heads)
        mesh = ProcessMesh(layout)
        local = ShardedDenoiser(model, cond, None, mesh.sequence_group if layout.sequence > 1 else None)
        denoise = GuidanceParallelDenoiser(local, mesh)
    else:  # scenes in parallel: every rank alone
        layout = ParallelLayout(1, 1)
        denoise = ShardedDenoiser(model, cond, None, None)
    total = args.warmup + args.steps
    schedule = timesteps(total, 7.0)
    times = []
    dist.barrier()
    for i in range(total):
        step = Step(i, total, schedule[i : i + 1], schedule[i + 1 : i + 2])
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        denoise(latent, step, passes)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else 0
    result = {"rank": rank, "seconds": sum(times) / len(times), "layout": [layout.guidance, layout.sequence]}
    result.update(tokens=tokens, peak_gib=round(peak / 2**30, 1))
    Path(out, f"{mode}-{world}-{rank}.json").write_text(json.dumps(result))


def measure(args: argparse.Namespace, mode: str, world: int, folder: str) -> list[dict]:
    from multitalk.distributed.launch import spawn

    spawn(_rank, world, (args, mode, folder), backend="gloo" if args.dry_run else "nccl")
    return [json.loads(Path(folder, f"{mode}-{world}-{r}.json").read_text()) for r in range(world)]


def report(args: argparse.Namespace) -> str:
    rows, single = [], None
    with tempfile.TemporaryDirectory() as folder:
        for n in args.ranks:
            wide = measure(args, "wide", n, folder)
            seconds = max(r["seconds"] for r in wide)  # the step ends when its slowest rank does
            single = seconds if n == 1 else single
            parallel = measure(args, "parallel", n, folder) if n > 1 else wide
            per_scene = sum(r["seconds"] for r in parallel) / len(parallel)
            throughput = n / per_scene
            rows.append(
                (n, "x".join(map(str, wide[0]["layout"])), seconds, (single or seconds) / seconds, throughput,
                 throughput / (n / single) if single else 1.0, max(r["peak_gib"] for r in wide), wide[0]["tokens"])
            )  # fmt: skip
    machine = (
        "CPU, gloo, tiny config (dry run: checks the script, the seconds mean nothing)"
        if args.dry_run
        else (f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}")
    )
    lines = [
        f"## Several GPUs — `bench_multi_gpu.py` ({machine}, {datetime.date.today()})",
        "",
        f"One {args.persons}-person {args.frames}-frame chunk, {args.resolution} bucket {args.bucket}, "
        f"{rows[0][7]} tokens, {'2' if args.two_pass else '3'} guidance passes a step, {args.steps} timed steps.",
        "",
        "| ranks | layout G x S | s / step, 1 scene | speedup | parallel scenes: steps / s | efficiency | peak GiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, layout, seconds, speedup, throughput, efficiency, peak, _ in rows:
        lines.append(
            f"| {n} | {layout} | {seconds:.3f} | {speedup:.2f}x | {throughput:.3f} | {efficiency:.2f} | {peak} |"
        )
    if args.dry_run:
        lines += ["", "No multi-GPU machine was available: run without `--dry-run` on one to fill in real figures."]
    return "\n".join(lines)


def write_results(path: Path, text: str) -> None:
    section = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    old = path.read_text() if path.exists() else "# Benchmark results\n\n"
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)
    new = pattern.sub(lambda _: section, old) if pattern.search(old) else old.rstrip() + "\n\n" + section
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.dry_run:
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available < max(args.ranks):
            print(
                f"needs {max(args.ranks)} GPUs, found {available} (use --dry-run to check the script)", file=sys.stderr
            )
            return 2
    text = report(args)
    print(text)
    write_results(args.results, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
