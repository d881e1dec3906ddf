"""Judging the media files a screenplay points at, once, at validate time, within bounded memory.

A render reads every reference image and every recording much later, in a worker, after minutes of other
work; what would fail there must fail here instead, with the author's file and line. So an image is opened, its
declared size checked against a pixel budget *before* its pixels are allocated (a 20000x20000 PNG header is a
decompression bomb), then fully decoded (a truncated file only fails on the last rows). A recording is probed
for an audio stream and a duration limit, then decoded as a stream of small blocks through ffmpeg to learn
whether anything in it is louder than the trim threshold — the render would otherwise trim it to nothing.
"""

from __future__ import annotations

import functools
import struct
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np
from PIL import Image, UnidentifiedImageError

from multitalk.media.ffmpeg import FFmpegError, command
from multitalk.media.probe import ProbeError, probe
from multitalk.screenplay.limits import (
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_RECORDING_BYTES,
    MAX_RECORDING_SECONDS,
    MIN_IMAGE_SIDE,
)

# Modes Pillow converts to RGB without losing what a viewer sees (alpha is dropped, palettes expanded). Others
# (16-bit and float greyscale, binary) would be squashed or clipped by `convert("RGB")`, so they are refused.
_RGB_SAFE_MODES = {"RGB", "RGBA", "RGBX", "P", "PA", "L", "LA", "CMYK", "YCbCr", "RGBa", "La"}
_DECODE_RATE = 48_000  # recordings are judged at the line rate the render decodes them to
_BLOCK_FRAMES = 48_000  # one second of audio per read: memory stays flat however long the file is
_PROBE_SECONDS = 60  # ffprobe/ffmpeg are given this long; a file that takes longer is not a plain recording


class MediaProblem(ValueError):
    """A media file a screenplay names cannot be used as it is; the message says why and what to do."""


@dataclass(frozen=True)
class ImageFacts:
    width: int
    height: int
    mode: str


def _identity(path: Path) -> tuple[str, int, int, int]:
    """What says a file is the one already judged: its path, inode, size and modification time."""
    info = path.stat()
    return str(path.absolute()), info.st_ino, info.st_size, info.st_mtime_ns  # as named: messages say path.name


def check_image(path: Path) -> ImageFacts:
    """Open and fully decode `path` within the pixel budget; raise MediaProblem with the reason otherwise.

    A file judged fine once in this process is not decoded again while it is unchanged (a render loads its
    screenplay in the command and again in the flow).
    """
    return _judged_image(*_identity(path))


@functools.lru_cache(maxsize=1024)  # only verdicts are kept: a problem raises, and is looked at again next time
def _judged_image(name: str, _inode: int, size: int, _mtime_ns: int) -> ImageFacts:
    path = Path(name)
    if size > MAX_IMAGE_BYTES:
        raise MediaProblem(
            f"{path.name} is {size / 2**20:.0f} MiB; reference images are at most {MAX_IMAGE_BYTES >> 20} MiB"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about damaged metadata it can read past
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                width, height = opened.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise MediaProblem(
                        f"{path.name} declares {width}x{height} pixels, over the limit of {MAX_IMAGE_PIXELS:,} "
                        "(4096x4096); scale it down — the model renders at 480p or 720p"
                    )
                if min(width, height) < MIN_IMAGE_SIDE:
                    raise MediaProblem(
                        f"{path.name} is {width}x{height} pixels; a reference image needs at least "
                        f"{MIN_IMAGE_SIDE} pixels on each side"
                    )
                if opened.mode not in _RGB_SAFE_MODES:
                    raise MediaProblem(
                        f"{path.name} is a {opened.mode!r} image, which converts to RGB badly; save it as an 8-bit "
                        "RGB PNG or JPEG"
                    )
                opened.load()  # decode every pixel now: truncation shows only here
                return ImageFacts(width, height, opened.mode)
    except MediaProblem:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaProblem(
            f"{path.name} declares too many pixels to decode safely (limit {MAX_IMAGE_PIXELS:,}, 4096x4096); "
            "scale it down — the model renders at 480p or 720p"
        ) from None
    except UnidentifiedImageError:
        raise MediaProblem(f"cannot read {path.name} as an image; use a PNG or JPEG") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:  # Pillow's decoders
        raise MediaProblem(f"cannot decode {path.name} ({error}); re-export it as a PNG or JPEG") from None


@dataclass(frozen=True)
class RecordingFacts:
    duration: float  # seconds, as the container says
    channels: int
    peak: float  # the largest absolute sample (mono mix at 48 kHz); 0.0 for digital silence


def _audio_stream(path: Path) -> tuple[dict, float]:
    try:
        info = probe(path)
    except ProbeError as error:
        reason = str(error).rsplit(": ", 1)[-1].rstrip(")")
        raise MediaProblem(
            f"ffprobe cannot read {path.name} ({reason}); use a WAV, FLAC, MP3 or OGG recording"
        ) from None
    streams = info.get("streams", [])
    audio = next((stream for stream in streams if stream.get("codec_type") == "audio"), None)
    if audio is None:
        kinds = sorted({str(stream.get("codec_type")) for stream in streams}) or ["none"]
        raise MediaProblem(
            f"{path.name} has no audio stream (streams: {', '.join(kinds)}); a recorded line needs sound — "
            "export the audio track"
        )
    duration = audio.get("duration") or info.get("format", {}).get("duration")
    if duration is None:
        raise MediaProblem(f"{path.name}: ffprobe reports no duration; re-export it as WAV or FLAC")
    return audio, float(duration)


def check_recording(path: Path, threshold_db: float | None) -> RecordingFacts:
    """Probe and stream-decode a recording; raise MediaProblem when it has no sound, is too long or is silent.

    `threshold_db` is the screenplay's `timing.trim_db`: a recording with no sample at or above it would be
    trimmed to nothing by the render. With None (the line is not trimmed) only digital silence is refused.
    Decoding stops at the first loud enough block, and never holds more than one block, so a long, mostly
    silent file costs time in proportion but no memory. Like images, an unchanged file is judged once per process.
    """
    return _judged_recording(*_identity(path), threshold_db)


@functools.lru_cache(maxsize=1024)
def _judged_recording(name: str, _inode: int, size: int, _mtime_ns: int, threshold_db: float | None) -> RecordingFacts:
    path = Path(name)
    if size > MAX_RECORDING_BYTES:
        raise MediaProblem(
            f"{path.name} is {size / 2**20:.0f} MiB; recordings are at most {MAX_RECORDING_BYTES >> 20} MiB"
        )
    audio, duration = _audio_stream(path)
    if duration > MAX_RECORDING_SECONDS:
        raise MediaProblem(
            f"{path.name} lasts {duration:.1f}s; a recorded line is at most {MAX_RECORDING_SECONDS:g}s — cut the "
            "take into lines"
        )
    channels = int(audio.get("channels") or 1)
    threshold = 10.0 ** (threshold_db / 20.0) if threshold_db is not None else np.finfo(np.float32).tiny
    peak = _stream_peak(path, channels, threshold=threshold)
    if peak < threshold and threshold_db is None:
        raise MediaProblem(f"{path.name} is digital silence (every sample is 0); use another take")
    if peak < threshold:
        level = f"{20 * np.log10(peak):.1f} dBFS" if peak > 0 else "digital silence"
        raise MediaProblem(
            f"{path.name} is silent after trimming: its loudest sample is {level}, below the trim threshold "
            f"{threshold_db:g} dBFS — use another take, or lower defaults.timing.trim_db"
        )
    return RecordingFacts(duration=duration, channels=channels, peak=peak)


def _stream_peak(path: Path, channels: int, threshold: float) -> float:
    """The largest absolute mono sample, reading ffmpeg's output one block at a time; stops at `threshold`."""
    try:
        decode = ffmpeg.input(str(path)).output(
            "pipe:1", map="0:a:0", vn=None, ar=_DECODE_RATE, f="f32le", acodec="pcm_f32le"
        )
        arguments = command(decode)
    except FFmpegError as error:
        raise MediaProblem(str(error)) from None
    limit = int((MAX_RECORDING_SECONDS + 1) * _DECODE_RATE)  # the container may under-report its duration
    block_bytes = _BLOCK_FRAMES * channels * 4
    peak, frames = 0.0, 0
    # ffmpeg's log goes to a file: a damaged recording can log more than a pipe holds while we read stdout.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=log)
        assert process.stdout is not None
        try:
            pending = b""
            while True:
                data = process.stdout.read(block_bytes)
                if not data:
                    break
                data = pending + data
                usable = len(data) - len(data) % (channels * 4)
                pending = data[usable:]
                samples = np.frombuffer(data[:usable], dtype="<f4").reshape(-1, channels).mean(axis=1)
                frames += samples.shape[0]
                if samples.size:
                    peak = max(peak, float(np.abs(samples).max()))
                if peak >= threshold:
                    break
                if frames > limit:
                    raise MediaProblem(
                        f"{path.name} decodes to more than {MAX_RECORDING_SECONDS:g}s of audio; cut the take into lines"
                    )
        finally:
            process.kill()
            process.communicate(timeout=_PROBE_SECONDS)
        log.seek(0)
        errors = log.read()[-4000:]
    if peak < threshold and process.returncode not in (0, -9):
        reason = errors.decode("utf-8", "replace").strip().splitlines()
        raise MediaProblem(f"ffmpeg cannot decode {path.name} ({reason[-1] if reason else 'unknown error'})")
    return peak
