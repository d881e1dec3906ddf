"""Voices and timing as store entries: one entry per line's audio, one per scene's laid-out audio.

A line's key covers its text (or recording's bytes), voice settings, engine and version; a scene's audio key
covers its lines' keys and every timing and mix setting. So an edited line re-voices that line only, and its
scene's tracks change from that line on (each line is loudness-normalised on its own, never by a whole-track
gain), which keeps every chunk before the edit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from multitalk.audio.align import Timeline, build_timeline
from multitalk.audio.line_audio import line_tts_key_material, synthesise_line
from multitalk.audio.subtitles import scene_cues, to_srt, to_vtt
from multitalk.audio.tracks import write_scene_audio
from multitalk.screenplay.schema import Line, Scene, Screenplay
from multitalk.screenplay.yaml_source import SourceMap
from multitalk.store.keys import content_key
from multitalk.store.store import Entry, Store

TTS_STAGE, TTS_VERSION, LINE_FILE = "tts", "1", "line.wav"
AUDIO_STAGE, AUDIO_VERSION = "scene-audio", "1"
TIMELINE_FILE, MIX_FILE = "timeline.json", "mix.wav"


def line_key(screenplay: Screenplay, line: Line) -> str:
    return content_key(TTS_STAGE, TTS_VERSION, line_tts_key_material(screenplay, line))


def ensure_line_audio(store: Store, key: str, screenplay: Screenplay, line: Line) -> tuple[Entry, bool]:
    """The line's audio entry, voiced now if the store lacks it; returns (entry, voiced_now)."""
    existing = store.get(TTS_STAGE, key)
    if existing is not None:
        return existing, False
    with store.writing(TTS_STAGE, key) as temp:
        info = synthesise_line(screenplay, line, temp / LINE_FILE)
        return store.commit(TTS_STAGE, key, temp, info.to_json()), True


def scene_audio_key(screenplay: Screenplay, scene: Scene, line_keys: list[str]) -> str:
    defaults = screenplay.defaults
    lines = [
        {"key": key, "speaker": line.speaker, "pause": line.pause, "overlap": line.overlap, "start": line.start}
        for key, line in zip(line_keys, scene.lines, strict=True)
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
    return content_key(AUDIO_STAGE, AUDIO_VERSION, material)


def ensure_scene_audio(
    store: Store,
    key: str,
    screenplay: Screenplay,
    scene: Scene,
    line_entries: list[Entry],
    *,
    scene_index: int | None = None,
    source: SourceMap | None = None,
) -> tuple[Entry, bool]:
    """Timeline, per-speaker 16 kHz tracks, the 48 kHz mix and the scene's subtitles; (entry, built_now)."""
    existing = store.get(AUDIO_STAGE, key)
    if existing is not None:
        return existing, False
    durations = [float(entry.result["duration"]) for entry in line_entries]
    timeline = build_timeline(scene, durations, screenplay.defaults.timing, scene_index=scene_index, source=source)
    with store.writing(AUDIO_STAGE, key) as temp:
        timeline.write(temp / TIMELINE_FILE)
        audio = write_scene_audio(timeline, [e.file(LINE_FILE) for e in line_entries], temp, screenplay.defaults.mix)
        cues = scene_cues(screenplay, timeline)
        (temp / "scene.srt").write_text(to_srt(cues), encoding="utf-8")
        (temp / "scene.vtt").write_text(to_vtt(cues), encoding="utf-8")
        result: dict[str, Any] = {"frames": timeline.frames, "seconds": timeline.duration, **audio.to_json()}
        return store.commit(AUDIO_STAGE, key, temp, result), True


def timeline_of(entry: Entry) -> Timeline:
    return Timeline.from_json(json.loads(entry.file(TIMELINE_FILE).read_text(encoding="utf-8")))


def tracks_of(entry: Entry) -> dict[str, Path]:
    """Speaker -> 16 kHz conditioning track file of a scene-audio entry."""
    return {track["speaker"]: entry.file(track["file"]) for track in entry.result["tracks"]}
