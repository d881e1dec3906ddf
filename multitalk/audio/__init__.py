"""Voices and timing: line audio from TTS engines or recordings, scene timelines, tracks, mixes, subtitles.

The flow per scene: `synthesise_line` for each line (cached by `line_tts_key_material`) -> `build_timeline` from
the line durations -> `write_scene_audio` (conditioning tracks at 16 kHz, delivery mix at 48 kHz) ->
`scene_cues` / `screenplay_cues` + `write_subtitles`; `draw_timeline` pictures it all.

The names below are imported on first use: importing one submodule (say `multitalk.audio.align`) must not pull in
the loudness stack (scipy) or every engine.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "multitalk.timing": ["FPS", "SAMPLES_PER_FRAME", "TRACK_SAMPLE_RATE"],
    "multitalk.audio.align": [
        "TimedLine",
        "Timeline",
        "TimelineError",
        "build_timeline",
    ],
    "multitalk.audio.line_audio": [
        "LineAudio",
        "LineAudioInfo",
        "info_path",
        "line_tts_key_material",
        "read_line_audio",
        "synthesise_line",
    ],
    "multitalk.audio.subtitles": ["Cue", "scene_cues", "screenplay_cues", "to_srt", "to_vtt", "write_subtitles"],
    "multitalk.audio.timeline_plot": ["draw_timeline"],
    "multitalk.audio.tracks": ["SceneAudio", "build_mix", "build_tracks", "write_scene_audio"],
    "multitalk.audio.engine": ["LINE_SAMPLE_RATE", "EngineIdentity", "VoiceError"],
    "multitalk.audio.tts": ["engine_for"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'multitalk.audio' has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULE_OF[name]), name)
