"""Voices and timing: line audio from TTS engines or recordings, scene timelines, tracks, mixes, subtitles.

The flow per scene: `synthesise_line` for each line (cached by `line_tts_key_material`) -> `build_timeline` from
the line durations -> `write_scene_audio` (conditioning tracks at 16 kHz, delivery mix at 48 kHz) ->
`scene_cues` / `screenplay_cues` + `write_subtitles`; `draw_timeline` pictures it all.
"""

from multitalk.audio.align import (
    FPS,
    SAMPLES_PER_FRAME,
    TRACK_SAMPLE_RATE,
    TimedLine,
    Timeline,
    TimelineError,
    build_timeline,
)
from multitalk.audio.engine import LINE_SAMPLE_RATE, EngineIdentity, VoiceError
from multitalk.audio.line_audio import (
    LineAudio,
    LineAudioInfo,
    info_path,
    line_tts_key_material,
    read_line_audio,
    synthesise_line,
)
from multitalk.audio.subtitles import Cue, scene_cues, screenplay_cues, to_srt, to_vtt, write_subtitles
from multitalk.audio.timeline_plot import draw_timeline
from multitalk.audio.tracks import SceneAudio, build_mix, build_tracks, write_scene_audio
from multitalk.audio.tts import engine_for

__all__ = [
    "FPS",
    "LINE_SAMPLE_RATE",
    "SAMPLES_PER_FRAME",
    "TRACK_SAMPLE_RATE",
    "Cue",
    "EngineIdentity",
    "LineAudio",
    "LineAudioInfo",
    "SceneAudio",
    "TimedLine",
    "Timeline",
    "TimelineError",
    "VoiceError",
    "build_mix",
    "build_timeline",
    "build_tracks",
    "draw_timeline",
    "engine_for",
    "info_path",
    "line_tts_key_material",
    "read_line_audio",
    "scene_cues",
    "screenplay_cues",
    "synthesise_line",
    "to_srt",
    "to_vtt",
    "write_scene_audio",
    "write_subtitles",
]
