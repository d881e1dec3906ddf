"""Host memory and speed of the `multitalk` renderer over scene length, with the tiny random model on the CPU.

Writes a tiny release (`multitalk.testing.tiny_release`) and two scenes, one of 2 chunks and one of 12 chunks,
then renders each scene, chunk after chunk, in a FRESH subprocess through `MultiTalkRenderer.render_chunk`
(frames consumed and dropped, each chunk's carry in its own folder, the previous one deleted once used), and
reports per scene:

- peak RSS of the whole process (VmHWM) and the peak above the RSS after the first chunk (models loaded,
  caches warm), whose 12-chunk / 2-chunk ratio says whether anything grows with the scene (goal <= 1.1);
- seconds per chunk (the first chunk, which loads the models, reported apart).

Run by hand: `.venv/bin/python bench/bench_multitalk_chunks.py [--steps 4 --resolution 720p --threads 1]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memory import MiB, reset_peak, status_kib  # bench/memory.py (this folder is on sys.path when run)


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from multitalk.generation.streaming import plan_chunks
    from multitalk.renderers.base import Person, SceneContext
    from multitalk.renderers.multitalk import MultiTalkRenderer

    scene = json.loads(Path(args.scene).read_text())
    context = SceneContext(
        scene_id="bench",
        image=Path(scene["image"]),
        prompt="two people talk in a sunny kitchen",
        negative_prompt=None,
        persons=(
            Person("a", "A", "left", None, track=Path(scene["tracks"][0])),
            Person("b", "B", "right", None, track=Path(scene["tracks"][1])),
        ),
        lines=(),
        total_frames=scene["frames"],
        resolution=args.resolution,
        seed=42,
        settings={"steps": args.steps},
    )
    renderer = MultiTalkRenderer(args.weights, config="tiny")
    work = Path(args.work)
    previous = None
    seconds, frames = [], 0
    after_first_kib = 0
    reset = False
    for chunk in plan_chunks(context.total_frames, renderer.geometry):
        carry = work / f"carry{chunk.index}"
        start = time.perf_counter()
        frames += sum(1 for _ in renderer.render_chunk(context, chunk, previous, carry))
        seconds.append(time.perf_counter() - start)
        if previous is not None:
            shutil.rmtree(previous)
        previous = carry
        if chunk.index == 0:
            after_first_kib = status_kib("VmRSS")
            peak_whole_first = status_kib("VmHWM")
            reset = reset_peak()
    peak_kib = status_kib("VmHWM")
    print(
        json.dumps(
            {
                "chunks": len(seconds),
                "frames": frames,
                "peak_process": max(peak_kib, peak_whole_first) * 1024,
                "peak_after_first": (peak_kib - after_first_kib) * 1024 if reset else None,
                "rss_after_first": after_first_kib * 1024,
                "first_chunk_s": seconds[0],
                "per_chunk_s": sum(seconds[1:]) / max(1, len(seconds) - 1),
                "peak_reset": reset,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, help="sampling steps per chunk (default: the tiny config's, 4)")
    parser.add_argument("--resolution", default="480p", choices=("480p", "720p"), help="tiny bucket table to use")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads in the rendering process")
    parser.add_argument("--chunks", type=int, nargs=2, default=(2, 12), metavar=("SHORT", "LONG"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--scene", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    from multitalk.model.configs import CONFIGS
    from multitalk.testing.tiny_release import write_tiny_release, write_tiny_scene

    config = CONFIGS["tiny"]
    geometry = config.geometry
    args.steps = args.steps or config.default_steps
    with tempfile.TemporaryDirectory(prefix="bench_multitalk_") as tmp:
        root = Path(tmp)
        weights = write_tiny_release(root / "weights", config)
        print(
            f"tiny model, {geometry.frame_num}/{geometry.motion_frames}-frame chunks, {args.steps} steps x 3 passes "
            f"(batched), {args.resolution}, {args.threads} torch thread(s), CPU"
        )
        results = {}
        for n in args.chunks:
            frames = geometry.frame_num + (n - 1) * geometry.advance
            assets = write_tiny_scene(root / f"scene{n}", frames, persons=2, image_hw=(60, 110))
            scene_file = root / f"scene{n}.json"
            scene_file.write_text(
                json.dumps({"image": str(assets.image), "tracks": [str(t) for t in assets.tracks], "frames": frames})
            )
            work = root / f"work{n}"
            work.mkdir()
            cmd = [sys.executable, __file__, "--child", "--weights", str(weights), "--scene", str(scene_file)]
            cmd += ["--work", str(work), "--steps", str(args.steps), "--resolution", args.resolution]
            cmd += ["--threads", str(args.threads)]
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results[n] = r
            grow = "n/a" if r["peak_after_first"] is None else f"{r['peak_after_first'] / MiB:6.1f} MiB"
            print(
                f"{n:3d} chunks ({r['frames']:4d} frames): peak RSS {r['peak_process'] / MiB:7.1f} MiB | "
                f"RSS after chunk 0 {r['rss_after_first'] / MiB:7.1f} MiB | peak above it later {grow} | "
                f"chunk 0 (loads models) {r['first_chunk_s']:5.2f} s | later chunks {r['per_chunk_s']:5.2f} s/chunk"
            )
        short, long = (results[n] for n in args.chunks)
        ratio = long["peak_process"] / short["peak_process"]
        print(f"peak RSS ratio {args.chunks[1]} / {args.chunks[0]} chunks: {ratio:.3f} (goal <= 1.1)")


if __name__ == "__main__":
    main()
