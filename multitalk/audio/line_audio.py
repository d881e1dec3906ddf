"""One line's audio: voiced by its engine, trimmed, resampled to the line rate, written with what made it.

This is the unit the TTS cache stores. Its key material (`line_tts_key_material`) names everything the samples
depend on — the text or the recording's bytes, the voice settings as used, the engine and its version (and model
fingerprint), the trim threshold and the output rate — and nothing else (not the speaker's key or display name,
not paths), so two characters sharing a voice share cached lines, and moving a project keeps its cache.

Output: a mono float32 WAV at 48 kHz (`LINE_SAMPLE_RATE`) and a JSON sidecar (`LineAudioInfo`) beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multitalk.audio.audio_io import read_wav, resample, write_json, write_wav
from multitalk.audio.engine import LINE_SAMPLE_RATE, EngineIdentity, LineRequest, VoiceError, warm_up
from multitalk.audio.trim import Trimmed, trim_silence
from multitalk.audio.tts import engine_for
from multitalk.audio.voice_catalog import effective_character
from multitalk.screenplay.schema import Line, Screenplay
from multitalk.store.keys import file_digest

logger = logging.getLogger(__name__)

LINE_AUDIO_FORMAT = 1  # bump when trimming, resampling or the file layout changes what a cached line holds


@dataclass(frozen=True)
class LineAudio:
    """A voiced line in memory."""

    samples: np.ndarray  # (N,) float32, trimmed, at sample_rate
    sample_rate: int
    engine: EngineIdentity
    voice: dict[str, Any]
    source_rate: int  # the engine's own rate before resampling
    trimmed_lead: float  # seconds of silence cut from the start (at the engine's rate)
    trimmed_tail: float

    @property
    def duration(self) -> float:
        return self.samples.size / self.sample_rate


@dataclass(frozen=True)
class LineAudioInfo:
    """What is recorded beside a line's WAV (`<name>.json`): its length and exactly which engine made it."""

    wav: str  # the WAV's file name (same folder as the JSON)
    samples: int
    sample_rate: int
    duration: float
    engine: dict[str, Any]
    voice: dict[str, Any]
    source_rate: int
    trimmed_lead: float
    trimmed_tail: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LineAudioInfo:
        return cls(**data)


def line_request(screenplay: Screenplay, line: Line) -> LineRequest:
    """The engine request for a line of a loaded screenplay."""
    character = screenplay.characters.get(line.speaker)
    if character is None:
        known = ", ".join(screenplay.characters)
        raise VoiceError(f"unknown speaker {line.speaker!r} (known: {known}); load the screenplay with load_screenplay")
    # Where this machine lacks a character's neural voice, its espeak fallback speaks (and is keyed) instead.
    character = effective_character(character, screenplay.project_dir)
    return LineRequest.for_line(character, line, screenplay.project_dir)


def warm_up_voices(screenplay: Screenplay, lines: Sequence[Line]) -> None:
    """Load the voice models these lines will be voiced with now (engines that keep models loaded), once each.

    Best effort: a voice that cannot be loaded is left alone, and its line reports why when it is voiced.
    """
    warmed: set[tuple[str, bool]] = set()
    for line in lines:
        voiced_as = (line.speaker, line.audio is not None)  # a recorded line has an engine of its own
        if voiced_as in warmed:
            continue
        warmed.add(voiced_as)
        try:
            request = line_request(screenplay, line)
            warm_up(engine_for(request.character, line), request)
        except VoiceError:
            continue


def line_trim_db(screenplay: Screenplay, line: Line) -> float | None:
    """The silence threshold for a line's ends, or None to keep them (`trim: false`, or `timing.trim_db: null`)."""
    return screenplay.defaults.timing.trim_db if line.trim else None


def line_tts_key_material(screenplay: Screenplay, line: Line, *, sample_rate: int = LINE_SAMPLE_RATE) -> dict[str, Any]:
    """JSON-able material for the cache key of one line's audio (the caller hashes it)."""
    request = line_request(screenplay, line)
    engine = engine_for(request.character, line)
    return {
        "format": LINE_AUDIO_FORMAT,
        "engine": engine.identity(request).to_json(),
        "voice": engine.voice_settings(request),
        "text": None if line.audio is not None else line.text,
        "recording_sha256": file_digest(line.audio_path) if line.audio_path is not None else None,
        "trim_db": line_trim_db(screenplay, line),
        "sample_rate": sample_rate,
    }


def synthesise(
    request: LineRequest, line: Line, *, trim_db: float | None, sample_rate: int = LINE_SAMPLE_RATE
) -> LineAudio:
    """Voice one line with its engine, trim its silent ends (unless `trim_db` is None), resample to `sample_rate`."""
    engine = engine_for(request.character, line)
    identity = engine.identity(request)
    raw = engine.synthesise(request)
    if trim_db is None:
        trimmed = Trimmed(np.asarray(raw.samples, dtype=np.float32), lead=0.0, tail=0.0)
    else:
        trimmed = trim_silence(raw.samples, raw.sample_rate, trim_db)
    if trimmed.samples.size == 0:
        what = f"recording {request.audio_path}" if line.audio is not None else f"line {request.text!r}"
        raise VoiceError(
            f"{request.who()}: {what} has no sound"
            + (f" above {trim_db:g} dBFS" if trim_db is not None else "")
            + "; check the text or recording "
            "(or lower defaults.timing.trim_db)"
        )
    samples = resample(trimmed.samples, raw.sample_rate, sample_rate)
    logger.debug("%s: %.2fs of audio (%s)", request.who(), samples.size / sample_rate, identity.name)
    return LineAudio(
        samples=samples,
        sample_rate=sample_rate,
        engine=identity,
        voice=engine.voice_settings(request),
        source_rate=raw.sample_rate,
        trimmed_lead=trimmed.lead,
        trimmed_tail=trimmed.tail,
    )


def info_path(wav_path: Path | str) -> Path:
    """Where a line WAV's sidecar lives: the same name with `.json`."""
    return Path(wav_path).with_suffix(".json")


def write_line_audio(audio: LineAudio, wav_path: Path | str) -> LineAudioInfo:
    """Write the WAV and its JSON sidecar (each atomically; the WAV first, so a sidecar implies its WAV)."""
    wav_path = Path(wav_path)
    write_wav(wav_path, audio.samples, audio.sample_rate)
    info = LineAudioInfo(
        wav=wav_path.name,
        samples=int(audio.samples.size),
        sample_rate=audio.sample_rate,
        duration=audio.duration,
        engine=audio.engine.to_json(),
        voice=audio.voice,
        source_rate=audio.source_rate,
        trimmed_lead=audio.trimmed_lead,
        trimmed_tail=audio.trimmed_tail,
    )
    write_json(info_path(wav_path), info.to_json())
    return info


def synthesise_line_audio(screenplay: Screenplay, line: Line, *, sample_rate: int = LINE_SAMPLE_RATE) -> LineAudio:
    """One line of a loaded screenplay voiced, trimmed and resampled, in memory."""
    request = line_request(screenplay, line)
    return synthesise(request, line, trim_db=line_trim_db(screenplay, line), sample_rate=sample_rate)


def synthesise_line(
    screenplay: Screenplay, line: Line, wav_path: Path | str, *, sample_rate: int = LINE_SAMPLE_RATE
) -> LineAudioInfo:
    """Voice one line of a loaded screenplay into `wav_path` (+ `.json` sidecar); returns the sidecar."""
    return write_line_audio(synthesise_line_audio(screenplay, line, sample_rate=sample_rate), wav_path)


def read_line_audio(wav_path: Path | str) -> tuple[np.ndarray, int]:
    """A line WAV's samples (mono float32) and rate."""
    return read_wav(wav_path)
