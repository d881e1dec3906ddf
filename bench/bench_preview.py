"""Preview renderer throughput (× real time) and peak memory over scene length (run by hand).

Renders one two-person scene through the render spine (chunk keys, renderer, H.264 segments, store commits),
without Prefect, in a fresh subprocess per scene length, and prints frames per second, × real time at 25 fps,
and the peak RSS of the rendering process (each segment's ffmpeg encoder is a separate, short-lived process
of constant size). Memory must stay flat as scenes get longer:
frames stream chunk by chunk to disk.

    .venv/bin/python bench/bench_preview.py                 # 2-chunk and 20-chunk scenes at 480p
    .venv/bin/python bench/bench_preview.py --chunks 2 60   # any chunk counts
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMAGE = REPO / "scripts_yaml" / "assets" / "cafe.png"


def frames_for_chunks(chunks: int) -> int:
    from multitalk.model.chunk_geometry import ChunkGeometry

    geometry = ChunkGeometry()
    return geometry.frame_num + (chunks - 1) * geometry.advance


def write_tracks(work: Path, frames: int) -> list[Path]:
    """Two 16 kHz tracks taking 3-second turns (made before the measured process starts)."""
    import numpy as np

    from multitalk.audio.audio_io import write_wav

    t = np.arange(frames * 640) / 16000
    syllables = (np.sin(2 * np.pi * 4 * t) > 0).astype(np.float32)
    tracks = []
    for index in range(2):
        turn = ((t // 3).astype(int) % 2 == index).astype(np.float32)
        samples = 0.2 * np.sin(2 * np.pi * (160 + 60 * index) * t) * syllables * turn
        tracks.append(write_wav(work / f"track{index}.wav", samples.astype(np.float32), 16000))
    return tracks


def run_one(chunks: int, preset: str, work: Path) -> dict:
    """Render a scene of `chunks` chunks from the tracks in `work`; runs inside the measured child process."""
    from multitalk.media.video_writer import EncodeSettings
    from multitalk.renderers.base import Person, SceneContext, SpokenLine
    from multitalk.renderers.preview import PreviewRenderer
    from multitalk.stages import chunk as chunk_stage
    from multitalk.store.store import Store

    frames = frames_for_chunks(chunks)
    tracks = [work / "track0.wav", work / "track1.wav"]
    lines = tuple(
        SpokenLine(
            speaker=("mia", "jonah")[i % 2],
            display_name=("Mia", "Jonah")[i % 2],
            text=f"Line {i}: a sentence of ordinary length, about as long as dialogue usually runs.",
            start_frame=i * 75,
            end_frame=min(i * 75 + 70, frames),
            on_screen=True,
        )
        for i in range(frames // 75)
    )
    persons = (
        Person("mia", "Mia", "left", None, "#2f8f8a", tracks[0]),
        Person("jonah", "Jonah", "right", None, "#d9a13b", tracks[1]),
    )
    context = SceneContext("bench", IMAGE, "", None, persons, lines, frames, "480p", 42)
    renderer = PreviewRenderer()
    encode = EncodeSettings(preset=preset, tune="zerolatency")
    store = Store(work / "store")
    started = time.perf_counter()
    keyed = chunk_stage.plan("bench", context, renderer, encode)
    for planned in keyed:
        chunk_stage.build(store, planned, renderer, context, encode)
    wall = time.perf_counter() - started
    width, height = renderer.frame_size(context)
    return {
        "chunks": len(keyed),
        "frames": frames,
        "size": f"{width}x{height}",
        "wall_s": wall,
        "fps": frames / wall,
        "x_realtime": frames / 25 / wall,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, nargs="+", default=[2, 20])
    parser.add_argument("--preset", default="ultrafast", help="x264 preset (ultrafast: what the flows use for preview)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.preset, args.work)))
        return
    results = []
    for chunks in args.chunks:
        work = Path(tempfile.mkdtemp(prefix="bench-preview-"))
        write_tracks(work, frames_for_chunks(chunks))
        command = [sys.executable, __file__, "--child", str(chunks), "--preset", args.preset, "--work", str(work)]
        output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
    print(f"{'chunks':>6} {'frames':>6} {'size':>8} {'wall s':>7} {'fps':>6} {'x real':>7} {'RSS MiB':>8}")
    for r in results:
        print(
            f"{r['chunks']:>6} {r['frames']:>6} {r['size']:>8} {r['wall_s']:>7.2f} {r['fps']:>6.0f} "
            f"{r['x_realtime']:>7.1f} {r['peak_rss_mib']:>8.1f}"
        )
    if len(results) >= 2:
        first, last = results[0], results[-1]
        ratio = last["peak_rss_mib"] / first["peak_rss_mib"]
        longer = last["frames"] / first["frames"]
        print(f"peak RSS {last['chunks']} vs {first['chunks']} chunks: {ratio:.3f}x (video {longer:.1f}x longer)")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
