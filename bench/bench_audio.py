"""Audio stage throughput: every line of a long screenplay voiced, then every scene's tracks and mix built.

Measures, on this machine, seconds of audio produced per second of wall time for
- `tts`: the line audio (espeak-ng / recordings / Coqui, as the screenplay says), trimmed, at 48 kHz;
- `scene audio`: timelines, conditioning tracks (16 kHz, per-line -23 LUFS) and mastered mixes (48 kHz);
- end to end (both, plus subtitles and the timeline picture),
and the peak resident memory of this process and of its children (espeak-ng, ffmpeg). Lines are timed one by
one, so the TTS figure is also given per engine (espeak-ng, Piper...), and `--compare` voices the same sentences
with espeak-ng and with the Piper voice (`en_US-joe-medium`) to report each engine's real-time factor (wall time
per second of speech; lower is faster) and Piper's one-off voice load time.

Default input: scripts_yaml/long_conversation.yaml; when it is missing, a long synthetic screenplay (espeak
voices, gaps, pauses, overlaps, a voice-over) is written to a temp folder first.

Run by hand: `.venv/bin/python bench/bench_audio.py [SCREENPLAY.yaml] [--workers 2] [--out DIR] [--compare 40]`.
"""

from __future__ import annotations

import argparse
import collections
import resource
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from multitalk.audio import (
    build_timeline,
    draw_timeline,
    screenplay_cues,
    synthesise_line,
    write_scene_audio,
    write_subtitles,
)
from multitalk.screenplay import load_screenplay_with_source

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCREENPLAY = REPO / "scripts_yaml" / "long_conversation.yaml"
WORDS = (  # noqa: SIM905 -- prose reads better than a list literal
    "the harbour was quiet that morning and nobody could remember when the boats had last stayed in so long "
    "we should talk about the bakery before the lawyer calls again because I really do not know what to say"
).split()


def synthetic_screenplay(folder: Path, scenes: int = 12, lines: int = 14) -> Path:
    """A long espeak screenplay (about ten minutes of speech) with every timing feature, written to `folder`."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (832, 480), (120, 140, 160)).save(folder / "scene.png")
    out = [
        "title: Synthetic long conversation",
        "characters:",
        "  nora: {voice: en-us+f2, pitch: 58, display_name: Nora}",
        "  sam: {voice: en-us+m1, pitch: 42, display_name: Sam}",
        "  narrator: {voice: en-gb, speed: 0.9, display_name: Narrator}",
        "scenes:",
    ]
    for s in range(scenes):
        out += [f"  - id: s{s + 1:02d}", "    image: scene.png", "    cast: {nora: left, sam: right}", "    lines:"]
        for i in range(lines):
            speaker = "narrator" if i == 0 else ("nora", "sam")[i % 2]
            count = 6 + (s * 7 + i * 5) % 22
            text = " ".join(WORDS[(s * 11 + i * 3 + k) % len(WORDS)] for k in range(count))
            out.append(f'      - {speaker}: "{text.capitalize()}."')
            if i % 5 == 3:
                out.append("        overlap: 0.4")
            elif i % 4 == 2:
                out.append("        pause: 0.9")
    path = folder / "synthetic_long.yaml"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def compare_engines(texts: list[str]) -> None:
    """The same sentences through espeak-ng and Piper, timed per line after Piper's voice is loaded."""
    from multitalk.audio import piper
    from multitalk.audio.engine import LineRequest, VoiceError
    from multitalk.audio.espeak import EspeakEngine
    from multitalk.screenplay.schema import Character

    engines = {"espeak": (EspeakEngine(), Character(voice="en-us+m3"))}
    if piper.piper_version() is not None:
        engines["piper"] = (piper.PiperEngine(), Character(engine="piper", voice="en_US-joe-medium"))
    else:
        print(f"piper: not installed ({piper.INSTALL_HINT})")
    for name, (engine, character) in engines.items():
        first = LineRequest("bench", character, texts[0], None, None)
        started = time.perf_counter()
        try:
            engine.synthesise(first)  # warm-up: Piper loads its ONNX voice here
        except VoiceError as error:
            print(f"{name}: {error}")
            continue
        load = time.perf_counter() - started
        speech = wall = 0.0
        for text in texts:
            started = time.perf_counter()
            result = engine.synthesise(LineRequest("bench", character, text, None, None))
            wall += time.perf_counter() - started
            speech += result.samples.size / result.sample_rate
        print(
            f"compare {name:7s} {speech:7.1f} s of speech in {wall:6.1f} s wall: real-time factor "
            f"{wall / speech:.3f} ({speech / wall:5.1f} x real time), {result.sample_rate} Hz; first line "
            f"(with load) {load:.2f} s"
        )


def peak_rss_mib() -> tuple[float, float]:
    """Peak RSS of this process and of its largest waited-for child, MiB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("screenplay", nargs="?", type=Path, default=None)
    parser.add_argument(
        "--workers", type=int, default=1, help="lines voiced in parallel (threads; engines are subprocesses)"
    )
    parser.add_argument("--out", type=Path, default=None, help="keep the outputs here (default: a temp folder)")
    parser.add_argument(
        "--compare", type=int, default=0, metavar="N", help="also voice N of its lines with espeak-ng and Piper"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-audio-") as temp:
        out = args.out or Path(temp) / "out"
        path = args.screenplay or DEFAULT_SCREENPLAY
        if args.screenplay is None and not path.exists():
            path = synthetic_screenplay(Path(temp) / "project")
            print(f"{DEFAULT_SCREENPLAY} not found; generated {path}")
        screenplay, source = load_screenplay_with_source(path)
        jobs = [
            (scene_index, line_index, line)
            for scene_index, scene in enumerate(screenplay.scenes)
            for line_index, line in enumerate(scene.lines)
        ]
        print(f"{path.name}: {len(screenplay.scenes)} scenes, {len(jobs)} lines, {args.workers} worker(s)")

        per_engine: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])  # speech s, wall s

        def voice(job):
            scene_index, line_index, line = job
            wav = out / "lines" / f"{scene_index:03d}_{line_index:03d}.wav"
            line_started = time.perf_counter()
            info = synthesise_line(screenplay, line, wav)
            totals = per_engine[info.engine["name"]]
            totals[0] += info.duration
            totals[1] += time.perf_counter() - line_started
            return job, wav, info

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            voiced = list(pool.map(voice, jobs))
        tts_seconds = time.perf_counter() - started
        speech = sum(info.duration for _, _, info in voiced)

        started_scenes = time.perf_counter()
        timelines = {}
        scene_audio_seconds = 0.0
        for scene_index, scene in enumerate(screenplay.scenes):
            mine = [(wav, info) for (s, _, _), wav, info in voiced if s == scene_index]
            timeline = build_timeline(
                scene,
                [info.duration for _, info in mine],
                screenplay.defaults.timing,
                scene_index=scene_index,
                source=source,
            )
            folder = out / "scenes" / scene.id
            timeline.write(folder / "timeline.json")
            write_scene_audio(timeline, [wav for wav, _ in mine], folder, screenplay.defaults.mix)
            timelines[scene.id] = timeline
            scene_audio_seconds += timeline.duration
        scenes_seconds = time.perf_counter() - started_scenes
        write_subtitles(screenplay_cues(screenplay, timelines), out / "final")
        draw_timeline(screenplay, timelines, out / "timeline.png")
        total_seconds = time.perf_counter() - started

    own, children = peak_rss_mib()
    for name, (engine_speech, engine_wall) in sorted(per_engine.items()):
        print(
            f"tts {name:8s} {engine_speech:8.1f} s of speech in {engine_wall:6.1f} s = real-time factor "
            f"{engine_wall / engine_speech:.3f} (line by line, includes a Piper voice's first load)"
        )
    if args.compare:
        texts = [line.text for _, _, line in jobs if line.text][: args.compare]
        compare_engines(texts)
    print(
        f"tts:         {speech:8.1f} s of speech in {tts_seconds:6.1f} s wall = {speech / tts_seconds:6.1f} x real time"
    )
    print(
        f"scene audio: {scene_audio_seconds:8.1f} s of scenes in {scenes_seconds:6.1f} s wall = "
        f"{scene_audio_seconds / scenes_seconds:6.1f} x real time (2 tracks + mix each)"
    )
    print(
        f"end to end:  {scene_audio_seconds:8.1f} s of scenes in {total_seconds:6.1f} s wall = "
        f"{scene_audio_seconds / total_seconds:6.1f} x real time"
    )
    print(f"peak RSS:    {own:.0f} MiB (this process), {children:.0f} MiB (largest child: espeak-ng / ffmpeg)")


if __name__ == "__main__":
    main()
