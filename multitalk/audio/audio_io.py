"""Audio files in and out: float32 WAV written atomically, any recording decoded through ffmpeg, resampling.

Everything the audio stage writes is float32 WAV so that what the next stage reads back is bit-identical to what
this stage computed: chunk cache keys hash raw track samples, and a 16-bit round trip would blur them. Files are
written to a temporary name beside the target and renamed, so a crash never leaves half a file under the real
name. Resampling uses soxr (deterministic, high quality), so the same input always gives the same samples.
"""

from __future__ import annotations

import json
import logging
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import ffmpeg
import numpy as np
import soundfile
import soxr

from multitalk.media.ffmpeg import FFmpegError, command
from multitalk.store.store import write_bytes_atomic

logger = logging.getLogger(__name__)


class AudioDecodeError(RuntimeError):
    """ffmpeg could not decode a recording (missing tool, unreadable file, no audio stream)."""


def float_wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """A mono IEEE-float WAV file (fmt + fact + data chunks) as bytes.

    Written by hand because libsndfile adds a PEAK chunk with a timestamp to float WAVs, so the same samples
    would give different bytes on every write; file checksums in the store must not change for nothing.
    """
    data = np.ascontiguousarray(samples, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHHH", 3, 1, sample_rate, sample_rate * 4, 4, 32, 0)  # IEEE float, mono, 32 bit
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"fact" + struct.pack("<II", 4, len(data) // 4)
    chunks += b"data" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def write_wav(path: Path | str, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono float32 WAV atomically (temp file + rename); the same samples always give the same bytes."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"{Path(path).name}: expected mono samples (1-D), got shape {samples.shape}")
    return write_bytes(path, float_wav_bytes(samples, sample_rate))


def write_bytes(path: Path | str, data: bytes) -> Path:
    """Write a file atomically (temp file + rename); returns `path`."""
    write_bytes_atomic(Path(path), data)
    return Path(path)


def write_text(path: Path | str, text: str) -> Path:
    """Write a UTF-8 text file atomically; returns `path`."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path | str, value: Any) -> Path:
    """Write JSON (sorted keys, indented) atomically."""
    return write_text(path, json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """Read a WAV (or any libsndfile format) as mono float32 and its sample rate; channels are averaged."""
    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(samples.mean(axis=1), dtype=np.float32), int(rate)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample mono float32 audio with soxr (very high quality); the same input gives the same output."""
    samples = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate or samples.size == 0:
        return samples.copy()
    return np.asarray(soxr.resample(samples, from_rate, to_rate, quality="VHQ"), dtype=np.float32)


def decode_audio(path: Path | str, sample_rate: int) -> np.ndarray:
    """Decode the first audio stream of any file ffmpeg reads to mono float32 at `sample_rate`.

    ffmpeg resamples and writes float32 WAV (all channels) to a temporary file; the channels are then averaged
    here, because ffmpeg's own downmix (`-ac 1`) mixes stereo at -3 dB each and would change the level.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError(f"{path}: recording not found")
    with tempfile.TemporaryDirectory(prefix="multitalk-decode-") as folder:
        out = Path(folder) / "decoded.wav"
        try:
            graph = ffmpeg.input(str(path))["a:0"].output(str(out), vn=None, ar=sample_rate, **{"c:a": "pcm_f32le"})
            argv = command(graph)
        except FFmpegError as error:
            raise AudioDecodeError(str(error)) from None
        result = subprocess.run(argv, capture_output=True, check=False)
        if result.returncode != 0 or not out.is_file():
            reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
            raise AudioDecodeError(
                f"{path}: ffmpeg cannot decode this recording ({reason[-1] if reason else 'unknown error'}); "
                "use a WAV, FLAC, MP3 or OGG file with an audio stream"
            )
        samples, rate = read_wav(out)
    if rate != sample_rate:
        raise AudioDecodeError(f"{path}: ffmpeg returned {rate} Hz, asked for {sample_rate} Hz")
    logger.debug("decoded %s: %d samples at %d Hz", path, samples.size, sample_rate)
    return samples
