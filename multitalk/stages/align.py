"""Stage `align`: a scene's lines laid out on the 25 fps grid, its per-speaker tracks, mix and subtitles.

The key covers the lines' voice keys and every timing and mix setting. Each line is loudness-normalised on its
own (never by a whole-track gain), so an edited line changes the tracks from that line on and keeps every chunk
before it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from multitalk.audio.align import Timeline, build_timeline
from multitalk.audio.audio_io import read_wav
from multitalk.audio.engine import LINE_SAMPLE_RATE
from multitalk.audio.line_audio import synthesise_line_audio, warm_up_voices
from multitalk.audio.subtitles import scene_cues, to_srt, to_vtt
from multitalk.screenplay.schema import Scene, Screenplay
from multitalk.screenplay.yaml_source import SourceMap
from multitalk.stages import early, voice
from multitalk.stages.stage import Stage
from multitalk.stages.voice import VoicedLine
from multitalk.store.keys import array_digest, content_key
from multitalk.store.store import Entry, Store

STAGE = Stage.ALIGN
VERSION = "4"  # 2: scenes last a multiple of SCENE_FRAME_MULTIPLE frames; 3: mastering by secant steps; 4: the
# mix re-measured only where the limiter changed it (its tracks, and so the chunk keys, are unchanged)
TIMELINE_FILE, MIX_FILE, SRT_FILE, VTT_FILE = "timeline.json", "mix.wav", "scene.srt", "scene.vtt"


@dataclass(frozen=True)
class AlignedScene:
    """A scene's laid-out audio in the store."""

    key: str
    frames: int
    seconds: float
    timeline_file: Path
    mix: Path  # 48 kHz delivery mix
    tracks: dict[str, Path]  # speaker -> 16 kHz conditioning track (exactly frames × 640 samples)
    subtitles: dict[str, Path]  # ".srt" / ".vtt" -> the scene's subtitle file
    mix_loudness: float | None

    @classmethod
    def of(cls, entry: Entry) -> AlignedScene:
        result = entry.result
        return cls(
            key=entry.key,
            frames=int(result["frames"]),
            seconds=float(result["seconds"]),
            timeline_file=entry.file(TIMELINE_FILE),
            mix=entry.file(MIX_FILE),
            tracks={track["speaker"]: entry.file(track["file"]) for track in result["tracks"]},
            subtitles={".srt": entry.file(SRT_FILE), ".vtt": entry.file(VTT_FILE)},
            mix_loudness=result.get("mix_loudness"),
        )

    def timeline(self) -> Timeline:
        return Timeline.from_json(json.loads(self.timeline_file.read_text(encoding="utf-8")))


def key(screenplay: Screenplay, scene: Scene, voice_keys: Sequence[str]) -> str:
    defaults = screenplay.defaults
    lines = [
        {"key": key, "speaker": line.speaker, "pause": line.pause, "overlap": line.overlap, "start": line.start}
        # A recorded line's transcript is not in its voice key (it does not change the sound) but is subtitled.
        | ({"transcript": line.text} if line.audio is not None and line.text is not None else {})
        for key, line in zip(voice_keys, scene.lines, strict=True)
    ]
    material = {
        "scene": scene.id,
        "lines": lines,
        "on_screen": scene.on_screen_speakers(),
        "timing": defaults.timing.model_dump(),
        "mix": defaults.mix.model_dump(),
        "fps": defaults.fps,
        "names": {line.speaker: screenplay.display_name(line.speaker) for line in scene.lines},
    }
    return content_key(STAGE, VERSION, material)


def warm_up() -> None:
    """Import the mixing and mastering code (scipy.signal, ~2 s) in the background while the lines are voiced."""
    threading.Thread(target=_import_tracks, name="align-warm-up").start()


def _import_tracks() -> None:
    with contextlib.suppress(ImportError):  # `build` imports it again and reports what is missing, located
        importlib.import_module("multitalk.audio.tracks")


def load(store: Store, key: str) -> AlignedScene | None:
    entry = store.get(STAGE, key)
    return AlignedScene.of(entry) if entry is not None else None


def build(
    store: Store,
    key: str,
    screenplay: Screenplay,
    scene: Scene,
    voices: Sequence[VoicedLine],
    *,
    source: SourceMap | None = None,
) -> AlignedScene:
    """Timeline, per-speaker 16 kHz tracks, the 48 kHz mix and the scene's subtitles, as a new entry.

    A scene laid out early (`audio_ahead`) from these very takes is taken instead of laid out twice.
    """
    from multitalk.audio.tracks import compose_scene_audio, read_line_wavs, write_composed_audio  # scipy: lazily

    early_scene = early.take(STAGE, key)
    try:
        line_audio, line_rate = read_line_wavs([voice.wav for voice in voices])
        if early_scene is not None and early_scene.takes == _takes(line_audio):
            timeline, composed = early_scene.timeline, early_scene.audio
        else:  # none, or laid out from other takes than the stored ones (a line voiced again since)
            timeline = _timeline(screenplay, scene, [voice.duration for voice in voices], source)
            composed = compose_scene_audio(timeline, line_audio, line_rate, screenplay.defaults.mix)
        with store.writing(STAGE, key) as temp:
            timeline.write(temp / TIMELINE_FILE)
            audio = write_composed_audio(timeline, composed, temp)
            cues = scene_cues(screenplay, timeline)
            (temp / SRT_FILE).write_text(to_srt(cues), encoding="utf-8")
            (temp / VTT_FILE).write_text(to_vtt(cues), encoding="utf-8")
            result: dict[str, Any] = {"frames": timeline.frames, "seconds": timeline.duration, **audio.to_json()}
            return AlignedScene.of(store.commit(STAGE, key, temp, result))
    finally:
        early.release(STAGE, key)


@dataclass(frozen=True)
class EarlyScene:
    """A scene laid out in memory: its timeline, its composed audio, and digests of the takes it was made from."""

    timeline: Timeline
    audio: Any  # multitalk.audio.tracks.ComposedAudio (imported lazily: it needs scipy)
    takes: tuple[str, ...]


def _timeline(screenplay: Screenplay, scene: Scene, durations: list[float], source: SourceMap | None) -> Timeline:
    index = next(i for i, candidate in enumerate(screenplay.scenes) if candidate.id == scene.id)
    return build_timeline(scene, durations, screenplay.defaults.timing, scene_index=index, source=source)


def _takes(line_audio: Sequence[Any]) -> tuple[str, ...]:
    return tuple(array_digest(samples) for samples in line_audio)


def _lay_out(screenplay: Screenplay, scene: Scene, takes: list[Any], durations: list[float]) -> EarlyScene:
    from multitalk.audio.tracks import compose_scene_audio

    timeline = _timeline(screenplay, scene, durations, None)
    audio = compose_scene_audio(timeline, takes, LINE_SAMPLE_RATE, screenplay.defaults.mix)
    return EarlyScene(timeline, audio, _takes(takes))


def audio_ahead(store: Store, screenplay: Screenplay, scenes: Sequence[Scene]) -> threading.Thread:
    """In a thread: voice the lines of `scenes` the store lacks and lay out the scenes it lacks, for the builds.

    While Prefect starts the render's flow run, the voice models of the missing lines load (in a thread of their
    own, so a second voice loads while the first speaks), the missing lines are voiced and their scenes laid out
    (`multitalk.stages.early`); each task's `build` then takes the result and writes the entry. Best effort:
    whatever fails here is done again, and reported, by its task.
    """

    def work() -> None:
        missing: list[tuple[Scene, str, list[str], list[VoicedLine | None]]] = []
        for scene in scenes:
            voice_keys = [voice.key(screenplay, line) for line in scene.lines]
            scene_key = key(screenplay, scene, voice_keys)
            if store.get(STAGE, scene_key) is None:
                missing.append((scene, scene_key, voice_keys, [voice.load(store, k) for k in voice_keys]))
        to_voice = [
            line
            for scene, _, _, stored in missing
            for line, found in zip(scene.lines, stored, strict=True)
            if found is None
        ]
        if to_voice:
            threading.Thread(
                target=warm_up_voices, args=(screenplay, to_voice), name="voices-ahead", daemon=True
            ).start()
        for scene, scene_key, voice_keys, stored_lines in missing:
            takes, durations = [], []
            for line_key, line, stored in zip(voice_keys, scene.lines, stored_lines, strict=True):
                take = (
                    None
                    if stored is not None
                    else early.compute(voice.STAGE, line_key, partial(synthesise_line_audio, screenplay, line))
                )
                if stored is None and take is None:
                    break  # failed, or its task is voicing it: the scene is laid out by its own task
                samples, rate = read_wav(stored.wav) if stored is not None else (take.samples, take.sample_rate)
                if rate != LINE_SAMPLE_RATE:
                    break
                takes.append(samples)
                durations.append(stored.duration if stored is not None else take.duration)
            else:
                early.compute(STAGE, scene_key, partial(_lay_out, screenplay, scene, takes, durations))

    thread = threading.Thread(target=work, name="audio-ahead", daemon=True)
    thread.start()
    return thread
