"""Stage `voice`: one line's audio (TTS or a recording), trimmed and resampled, as a store entry.

A line's key covers its text (or the recording's bytes), voice settings, engine and version, trim threshold and
rate (`line_tts_key_material`), and nothing else, so two characters sharing a voice share cached lines.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from multitalk.audio.audio_io import AudioDecodeError
from multitalk.audio.line_audio import line_tts_key_material, preload_line, synthesise_line
from multitalk.audio.tts import VoiceError
from multitalk.failures import at_line
from multitalk.screenplay.schema import Line, Scene, Screenplay
from multitalk.stages.stage import Stage
from multitalk.store.keys import content_key
from multitalk.store.store import Entry, Store

STAGE = Stage.VOICE
VERSION = "1"
LINE_FILE = "line.wav"


@dataclass(frozen=True)
class VoicedLine:
    """A voiced line in the store."""

    key: str
    wav: Path  # mono float32 WAV at 48 kHz
    duration: float  # seconds
    engine: str  # the engine's name (espeak, coqui, file, ...)

    @classmethod
    def of(cls, entry: Entry) -> VoicedLine:
        return cls(entry.key, entry.file(LINE_FILE), float(entry.result["duration"]), entry.result["engine"]["name"])


def key(screenplay: Screenplay, line: Line) -> str:
    return content_key(STAGE, VERSION, line_tts_key_material(screenplay, line))


def load(store: Store, key: str) -> VoicedLine | None:
    entry = store.get(STAGE, key)
    return VoicedLine.of(entry) if entry is not None else None


def build(store: Store, key: str, screenplay: Screenplay, line: Line) -> VoicedLine:
    """Voice the line into a new entry (the caller has checked that the store lacks it)."""
    with store.writing(STAGE, key) as temp:
        try:
            info = synthesise_line(screenplay, line, temp / LINE_FILE)
        except (VoiceError, AudioDecodeError) as error:  # bad input: say which line, in the screenplay's terms
            raise at_line(screenplay, line, error) from error
        return VoicedLine.of(store.commit(STAGE, key, temp, info.to_json()))


def preload_missing(store: Store, screenplay: Screenplay, scenes: Sequence[Scene]) -> threading.Thread:
    """Load, in a thread, the voice models of the lines the store lacks: loading a model can take longer than
    voicing a line, and the render has other things to start meanwhile. Best effort: a voice that fails to load
    fails again, with its located error, when its line is voiced."""

    def load() -> None:
        for scene in scenes:
            for line in scene.lines:
                if store.get(STAGE, key(screenplay, line)) is None:
                    with contextlib.suppress(Exception):
                        preload_line(screenplay, line)

    thread = threading.Thread(target=load, name="voice-preload", daemon=True)
    thread.start()
    return thread
