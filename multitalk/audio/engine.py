"""What a voice engine is: the request it gets, what it returns, how it describes itself for the cache key.

An engine turns one `LineRequest` into raw samples at its own rate, and describes itself for the cache key:
`identity` (engine name, version, model fingerprint) and `voice_settings` (everything about the voice that changes
the sound). Trimming, resampling and writing are shared (`line_audio.py`), so engines stay small. Engine modules
import this file only; `tts.py` names them (no import circle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from multitalk.screenplay.schema import Character, Line
from multitalk.timing import DELIVERY_SAMPLE_RATE

LINE_SAMPLE_RATE = DELIVERY_SAMPLE_RATE  # lines are kept at the delivery rate; tracks derive 16 kHz from them


class VoiceError(RuntimeError):
    """A line cannot be voiced as written (engine missing, model not found, unknown voice...)."""


@dataclass(frozen=True)
class EngineIdentity:
    """Which engine made a line, exactly: recorded beside the audio and part of its cache key."""

    name: str  # "espeak" | "coqui" | "file"
    version: str  # e.g. "1.51" (espeak-ng), "0.28.0" (coqui-tts), ffmpeg's version line (file)
    details: dict[str, Any] = field(default_factory=dict)  # e.g. the Coqui model's file fingerprints

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "details": self.details}


@dataclass(frozen=True)
class LineRequest:
    """One line to voice, with everything an engine needs to know about it."""

    speaker: str  # the character's key in the screenplay
    character: Character
    text: str | None  # None for a recorded line
    audio_path: Path | None  # the recording, resolved inside the project folder
    project_dir: Path | None  # where relative model folders are looked up

    @classmethod
    def for_line(cls, character: Character, line: Line, project_dir: Path | None = None) -> LineRequest:
        return cls(line.speaker, character, line.text, line.audio_path, project_dir)

    def who(self) -> str:
        """`character 'alice'`, for messages."""
        return f"character {self.speaker!r}"


@dataclass(frozen=True)
class Synthesised:
    """Raw engine output: mono float32 at the engine's own rate, untrimmed."""

    samples: np.ndarray  # (N,) float32
    sample_rate: int


class TTSEngine(Protocol):
    """What every voice engine provides."""

    name: str

    def identity(self, request: LineRequest) -> EngineIdentity:
        """Engine name, version and (for model-based engines) a fingerprint of the model files."""
        ...

    def voice_settings(self, request: LineRequest) -> dict[str, Any]:
        """JSON-able voice parameters that change the sound (voice id, rate, pitch...), as actually used."""
        ...

    def synthesise(self, request: LineRequest) -> Synthesised:
        """Voice the line; raises VoiceError with what to fix."""
        ...


def warm_up(engine: TTSEngine, request: LineRequest) -> None:
    """Load what `engine` needs for `request`'s voice now, if it keeps models loaded (its optional `warm_up`).

    A render loads the voices of the lines it will voice while Prefect starts its flow run (`align.audio_ahead`), so
    a second voice loads while the first speaks (a Piper voice: 0.3-0.5 s on two cores).
    """
    method = getattr(engine, "warm_up", None)
    if method is not None:
        method(request)
