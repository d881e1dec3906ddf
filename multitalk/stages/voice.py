"""Stage `voice`: one line's audio (TTS or a recording), trimmed and resampled, as a store entry.

A line's key covers its text (or the recording's bytes), voice settings, engine and version, trim threshold and
rate (`line_tts_key_material`), and nothing else, so two characters sharing a voice share cached lines.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from multitalk.audio.audio_io import AudioDecodeError
from multitalk.audio.line_audio import LineAudio, line_tts_key_material, voice_line, write_line_audio
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
    """Voice the line into a new entry (the caller has checked that the store lacks it).

    A line `voice_ahead` voiced already is taken from it (waiting if it is still being voiced) instead of twice.
    """
    with _ahead_lock:
        ahead = _ahead.pop(key, None)
        if ahead is None:
            _voicing.add(key)
    try:
        with store.writing(STAGE, key) as temp:
            try:
                audio = ahead.result() if ahead is not None else voice_line(screenplay, line)
                info = write_line_audio(audio, temp / LINE_FILE)
            except (VoiceError, AudioDecodeError) as error:  # bad input: say which line, in the screenplay's terms
                raise at_line(screenplay, line, error) from error
            return VoicedLine.of(store.commit(STAGE, key, temp, info.to_json()))
    finally:
        with _ahead_lock:
            _voicing.discard(key)


_ahead_lock = threading.Lock()
_ahead: dict[str, Future[LineAudio]] = {}  # lines voiced (or being voiced) ahead, by key, until `build` takes them
_voicing: set[str] = set()  # keys `build` is voicing itself: not voiced ahead as well


def voice_ahead(store: Store, screenplay: Screenplay, scenes: Sequence[Scene]) -> threading.Thread:
    """Voice, in a thread, the lines of `scenes` the store lacks, for `build` to take.

    The models load and the lines are synthesised while the render starts (its Prefect flow run, the stored
    scenes' look-ups); `build` still writes each entry, in its task. Best effort: a line that fails here fails
    with the same error when its `build` takes it, and a retry voices it afresh.
    """

    def work() -> None:
        for scene in scenes:
            for line in scene.lines:
                line_key = key(screenplay, line)
                if store.get(STAGE, line_key) is not None:
                    continue
                with _ahead_lock:
                    if line_key in _ahead or line_key in _voicing:
                        continue
                    future = _ahead[line_key] = Future()
                try:
                    future.set_result(voice_line(screenplay, line))
                except BaseException as error:  # kept for `build` to raise, located, in its task
                    future.set_exception(error)

    thread = threading.Thread(target=work, name="voice-ahead", daemon=True)
    thread.start()
    return thread
