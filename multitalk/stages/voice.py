"""Stage `voice`: one line's audio (TTS or a recording), trimmed and resampled, as a store entry.

A line's key covers its text (or the recording's bytes), voice settings, engine and version, trim threshold and
rate (`line_tts_key_material`), and nothing else, so two characters sharing a voice share cached lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from multitalk.audio.audio_io import AudioDecodeError
from multitalk.audio.line_audio import line_tts_key_material, synthesise_line_audio, write_line_audio
from multitalk.audio.tts import VoiceError
from multitalk.failures import at_line
from multitalk.screenplay.schema import Line, Screenplay
from multitalk.stages import early
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
    """Voice the line into a new entry (the caller has checked that the store lacks it).

    A line voiced early (`align.audio_ahead`) is taken, waiting for it if need be, instead of voiced twice.
    """
    audio = early.take(STAGE, key)
    try:
        with store.writing(STAGE, key) as temp:
            try:
                take = audio if audio is not None else synthesise_line_audio(screenplay, line)
                info = write_line_audio(take, temp / LINE_FILE)
            except (VoiceError, AudioDecodeError) as error:  # bad input: say which line, in the screenplay's terms
                raise at_line(screenplay, line, error) from error
            return VoicedLine.of(store.commit(STAGE, key, temp, info.to_json()))
    finally:
        early.release(STAGE, key)
