"""A scene's audio: one conditioning track per on-screen speaker (16 kHz) and the delivery mix (48 kHz).

Conditioning tracks (what wav2vec2 hears for person 1 and person 2) are exactly `frames x 640` samples, equal for
both people, silent where that person does not speak, and at -23 LUFS (BS.1770) as the model was trained. The
loudness is set per line, not with one gain for the whole track: a gain computed from all lines would let an edit
to the last line change every sample of the track, and the chunk cache keys hash track samples — so an edit would
re-render the whole scene. Per line, samples before an edited line's start never change. Each line is set to
-23 LUFS as measured inside one gating block of silence each side (`normalise_line`), which is how its blocks
count in the whole track, so the track lands within ~0.1 LU of -23 (the gates skip the silence between lines).

The delivery mix holds everyone, voice-overs included, at the line rate (48 kHz), with one gain to the screenplay's
loudness target (`Mix.loudness`, integrated) and a true-peak limiter for the ceiling (`Mix.true_peak`). It is not
a conditioning input, so a whole-scene gain is fine there.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multitalk.audio.align import Timeline
from multitalk.audio.audio_io import read_wav, resample, write_json, write_wav
from multitalk.audio.engine import LINE_SAMPLE_RATE
from multitalk.audio.loudness import Mastered, master, normalise_line
from multitalk.screenplay.schema import Mix
from multitalk.timing import SAMPLES_PER_FRAME, TRACK_SAMPLE_RATE

logger = logging.getLogger(__name__)

TRACK_LOUDNESS = -23.0  # LUFS, what MultiTalk's audio encoder expects (BS.1770 integrated)
LINE_LEVEL = -23.0  # LUFS, every line's level in the mix before the mix gain: speakers stay balanced


@dataclass(frozen=True)
class SceneAudio:
    """What `write_scene_audio` wrote for a scene."""

    scene_id: str
    frames: int
    tracks: tuple[tuple[str, Path], ...]  # (speaker, 16 kHz WAV), person 1 then person 2
    mix: Path  # 48 kHz WAV, everyone
    mix_loudness: float  # LUFS, as measured
    mix_true_peak: float  # dBTP, as measured

    def to_json(self) -> dict[str, Any]:
        return {
            "scene_id": self.scene_id,
            "frames": self.frames,
            "tracks": [{"speaker": speaker, "file": path.name} for speaker, path in self.tracks],
            "mix": self.mix.name,
            "mix_loudness": self.mix_loudness if math.isfinite(self.mix_loudness) else None,  # None: silent
            "mix_true_peak": self.mix_true_peak if math.isfinite(self.mix_true_peak) else None,
        }


def _place(canvas: np.ndarray, samples: np.ndarray, offset: int) -> None:
    end = min(canvas.size, offset + samples.size)
    if end > offset:
        canvas[offset:end] += samples[: end - offset]


def _check_lines(timeline: Timeline, line_audio: Sequence[np.ndarray]) -> None:
    if len(line_audio) != len(timeline.lines):
        raise ValueError(
            f"scene {timeline.scene_id!r}: {len(line_audio)} line recordings for {len(timeline.lines)} lines"
        )


def build_tracks(
    timeline: Timeline, line_audio: Sequence[np.ndarray], line_rate: int = LINE_SAMPLE_RATE
) -> dict[str, np.ndarray]:
    """Conditioning tracks by on-screen speaker (person 1 first): 16 kHz float32, `frames x 640` samples each.

    `line_audio[i]` is line i's mono audio at `line_rate`; each line is resampled and set to -23 LUFS on its own.
    """
    _check_lines(timeline, line_audio)
    length = timeline.frames * (TRACK_SAMPLE_RATE // timeline.fps)
    tracks = {speaker: np.zeros(length, dtype=np.float32) for speaker in timeline.on_screen_speakers}
    for line, samples in zip(timeline.lines, line_audio, strict=True):
        if line.speaker not in tracks:
            continue  # a voice-over: mix only
        at_16k = resample(samples, line_rate, TRACK_SAMPLE_RATE)
        _place(
            tracks[line.speaker],
            normalise_line(at_16k, TRACK_SAMPLE_RATE, TRACK_LOUDNESS),
            line.start_frame * SAMPLES_PER_FRAME,
        )
    return tracks


def build_mix(
    timeline: Timeline, line_audio: Sequence[np.ndarray], settings: Mix, line_rate: int = LINE_SAMPLE_RATE
) -> Mastered:
    """The delivery mix at `line_rate` (everyone), mastered to `settings` (loudness and true-peak ceiling)."""
    _check_lines(timeline, line_audio)
    per_frame = line_rate // timeline.fps
    mix = np.zeros(timeline.frames * per_frame, dtype=np.float32)
    for line, samples in zip(timeline.lines, line_audio, strict=True):
        _place(mix, normalise_line(samples, line_rate, LINE_LEVEL), line.start_frame * per_frame)
    return master(mix, line_rate, settings.loudness, settings.true_peak)


def read_line_wavs(paths: Sequence[Path | str]) -> tuple[list[np.ndarray], int]:
    """Line WAVs as arrays, checking they share one rate."""
    audio, rates = [], set()
    for path in paths:
        samples, rate = read_wav(path)
        audio.append(samples)
        rates.add(rate)
    if len(rates) > 1:
        raise ValueError(f"line recordings have different rates {sorted(rates)}; write them with synthesise_line")
    return audio, rates.pop() if rates else LINE_SAMPLE_RATE


@dataclass(frozen=True)
class ComposedAudio:
    """A scene's tracks and mastered mix in memory (what `write_scene_audio` writes)."""

    tracks: dict[str, np.ndarray]  # speaker -> 16 kHz track, person 1 first
    mastered: Mastered
    line_rate: int


def compose_scene_audio(
    timeline: Timeline, line_audio: Sequence[np.ndarray], line_rate: int, settings: Mix
) -> ComposedAudio:
    """The conditioning tracks and the mastered mix of a scene from its lines' audio.

    The mix is mastered in a thread while the tracks are built: both are numpy, scipy and soxr work that releases
    the GIL, and mastering (a few loudness measurements of the whole scene) takes as long as the rest together.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mix") as mixing:
        mix = mixing.submit(build_mix, timeline, line_audio, settings, line_rate)
        tracks = build_tracks(timeline, line_audio, line_rate)
        return ComposedAudio(tracks, mix.result(), line_rate)


def write_scene_audio(
    timeline: Timeline, line_wavs: Sequence[Path | str], out_dir: Path | str, settings: Mix
) -> SceneAudio:
    """Build and write `track1.wav`, `track2.wav` (16 kHz), `mix.wav` (48 kHz) and `scene_audio.json` to `out_dir`."""
    return write_composed_audio(timeline, compose_scene_audio(timeline, *read_line_wavs(line_wavs), settings), out_dir)


def write_composed_audio(timeline: Timeline, composed: ComposedAudio, out_dir: Path | str) -> SceneAudio:
    """Write a scene's composed audio as `write_scene_audio` does."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for number, (speaker, samples) in enumerate(composed.tracks.items(), start=1):
        written.append((speaker, write_wav(out_dir / f"track{number}.wav", samples, TRACK_SAMPLE_RATE)))
    mastered, line_rate = composed.mastered, composed.line_rate
    mix_path = write_wav(out_dir / "mix.wav", mastered.samples, line_rate)
    result = SceneAudio(
        timeline.scene_id, timeline.frames, tuple(written), mix_path, mastered.loudness, mastered.true_peak
    )
    write_json(out_dir / "scene_audio.json", result.to_json())
    logger.info(
        "scene %s: %d tracks, mix %.1f LUFS / %.1f dBTP",
        timeline.scene_id,
        len(written),
        mastered.loudness,
        mastered.true_peak,
    )
    return result
