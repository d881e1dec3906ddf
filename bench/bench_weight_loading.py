"""Peak host memory of sharded-checkpoint loading into a meta-built model.

Writes a ~1 GiB fp32 checkpoint (a stack of Linear layers in 4 safetensors shards + index) to a temp folder,
then loads it in FRESH subprocesses, each measuring its peak RSS above the RSS it had after imports and after
building the model on the meta device:

- `loader fp32`: `multitalk.model.checkpoint.load_safetensors_checkpoint`, no cast (goal: peak ≤ 1.2 × checkpoint);
- `loader bf16`: the same with a cast to bf16 (goal: peak ≤ 1.2 × the bf16 model);
- `naive`: `safetensors.torch.load_file` of every shard + `load_state_dict` into a materialised model, for
  comparison (two copies).

Run by hand: `.venv/bin/python bench/bench_weight_loading.py [--layers 16 --width 4096 --shards 4]`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memory import MiB, reset_peak, status_kib  # bench/memory.py (this folder is on sys.path when run)


def _model(layers: int, width: int):
    from torch import nn

    return nn.Sequential(*(nn.Linear(width, width) for _ in range(layers)))


def write_checkpoint(folder: Path, layers: int, width: int, shards: int) -> int:
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    per = -(-layers // shards)
    weight_map: dict[str, str] = {}
    total = 0
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {}
        for i in range(s * per, min(layers, (s + 1) * per)):
            tensors[f"{i}.weight"] = torch.randn(width, width)
            tensors[f"{i}.bias"] = torch.randn(width)
        save_file(tensors, str(folder / name))
        total += sum(t.numel() * t.element_size() for t in tensors.values())
        weight_map.update(dict.fromkeys(tensors, name))
        del tensors
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return total


def child(folder: Path, mode: str, layers: int, width: int) -> None:
    import torch

    from multitalk.model.checkpoint import build_on_meta, load_safetensors_checkpoint, read_index

    index = folder / "model.safetensors.index.json"
    if mode != "naive":
        model = build_on_meta(lambda: _model(layers, width))
    reset = reset_peak()
    base_kib = status_kib("VmRSS")
    start = time.perf_counter()
    if mode == "naive":
        model = _model(layers, width)  # materialised and randomly initialised: the usual way
        from safetensors.torch import load_file

        state = {}
        for shard in sorted(set(read_index(index).values())):
            state.update(load_file(str(folder / shard)))
        model.load_state_dict(state)
        del state
    else:
        dtype = torch.bfloat16 if mode == "loader_bf16" else torch.float32
        load_safetensors_checkpoint(model, index, dtype=dtype)
    seconds = time.perf_counter() - start
    if reset:
        peak_kib = status_kib("VmHWM")
    else:
        import resource

        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    on_meta = sum(p.is_meta for p in model.parameters())
    print(
        json.dumps(
            {
                "peak_minus_base": (peak_kib - base_kib) * 1024,
                "model_bytes": model_bytes,
                "seconds": seconds,
                "on_meta": on_meta,
                "peak_reset": reset,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], args.layers, args.width)
        return

    with tempfile.TemporaryDirectory(prefix="bench_weights_") as tmp:
        folder = Path(tmp)
        ckpt = write_checkpoint(folder, args.layers, args.width, args.shards)
        print(f"checkpoint: {ckpt / MiB:.0f} MiB fp32 in {args.shards} shards ({args.layers} x Linear {args.width})")
        for mode in ("loader_fp32", "loader_bf16", "naive"):
            cmd = [sys.executable, __file__, "--layers", str(args.layers), "--width", str(args.width)]
            out = subprocess.run([*cmd, "--child", tmp, mode], check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            peak, model = r["peak_minus_base"], r["model_bytes"]
            print(
                f"{mode:12s} peak RSS - baseline {peak / MiB:7.0f} MiB | loaded model {model / MiB:6.0f} MiB | "
                f"peak / checkpoint {peak / ckpt:4.2f} | peak / model {peak / model:4.2f} | "
                f"{r['seconds']:5.2f} s | params on meta {r['on_meta']}"
                + ("" if r["peak_reset"] else " (ru_maxrss, peak not reset)")
            )


if __name__ == "__main__":
    main()
