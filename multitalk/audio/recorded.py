"""The `file` engine: a recorded line, decoded by ffmpeg to mono float32 at the line rate.

Any format ffmpeg reads works (WAV, FLAC, MP3, OGG, even the audio of a video). The recording's bytes, not its
path, go into the cache key (`line_audio.py`), so replacing the file re-renders the line and moving it does not.
"""

from __future__ import annotations

from typing import Any

from multitalk.audio.audio_io import AudioDecodeError, decode_audio
from multitalk.audio.engine import LINE_SAMPLE_RATE, EngineIdentity, LineRequest, Synthesised, VoiceError
from multitalk.media.ffmpeg import FFmpegError, ffmpeg_version


class RecordedEngine:
    """Plays a line from its recording (`audio:` on the line)."""

    name = "file"

    def voice_settings(self, request: LineRequest) -> dict[str, Any]:
        return {}  # the recording is the voice; its content hash is part of the key

    def identity(self, request: LineRequest) -> EngineIdentity:
        try:
            return EngineIdentity(self.name, ffmpeg_version())
        except FFmpegError as error:
            raise VoiceError(f"{request.who()}: {error}") from None

    def synthesise(self, request: LineRequest) -> Synthesised:
        if request.audio_path is None:
            raise VoiceError(
                f"{request.who()}: a recorded line needs `audio: path` (resolved by load_screenplay); "
                "characters with engine 'file' give a recording on every line"
            )
        try:
            samples = decode_audio(request.audio_path, LINE_SAMPLE_RATE)
        except AudioDecodeError as error:
            raise VoiceError(f"{request.who()}: {error}") from None
        return Synthesised(samples, LINE_SAMPLE_RATE)
