"""The espeak-ng engine: a subprocess per line, writing a WAV to a temporary file.

espeak-ng is the default voice because it is small, offline and deterministic (the same text, voice and settings
give the same samples), which keeps line caches stable. `Character.speed` is relative to espeak's normal rate of
175 words a minute; espeak-ng accepts 80 wpm at the slowest, so slower settings are clamped (with a warning) and the
key records the rate actually used. The text goes in on stdin as UTF-8, so a line starting with '-' is never read
as an option.
"""

from __future__ import annotations

import functools
import itertools
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from multitalk.audio.audio_io import read_wav
from multitalk.audio.engine import EngineIdentity, LineRequest, Synthesised, VoiceError

logger = logging.getLogger(__name__)

NORMAL_WPM = 175  # espeak-ng's default rate: speed 1.0
MIN_WPM = 80  # espeak-ng ignores anything slower
MAX_WPM = 1000


def espeak_binary() -> str:
    tool = shutil.which("espeak-ng")
    if tool is None:
        raise VoiceError("espeak-ng not found; install it (apt-get install espeak-ng)")
    return tool


@functools.cache
def espeak_version() -> str:
    """espeak-ng's version number, e.g. "1.51" (from `espeak-ng --version`)."""
    result = subprocess.run([espeak_binary(), "--version"], capture_output=True, text=True, check=False)
    words = result.stdout.split()
    # "eSpeak NG text-to-speech: 1.51  Data at: ..." -> the word after "text-to-speech:"
    for before, word in itertools.pairwise(words):
        if before == "text-to-speech:":
            return word
    return result.stdout.strip() or "unknown"


def words_per_minute(speed: float) -> int:
    """The espeak rate for a relative speed, clamped to what espeak-ng accepts."""
    return min(MAX_WPM, max(MIN_WPM, round(NORMAL_WPM * speed)))


class EspeakEngine:
    """espeak-ng voices, e.g. "en-us+f3" (voice + variant); the default voice is the character's language."""

    name = "espeak"

    def voice_settings(self, request: LineRequest) -> dict[str, Any]:
        character = request.character
        return {
            "voice": character.voice or character.language,
            "wpm": words_per_minute(character.speed),
            "pitch": character.pitch,
        }

    def identity(self, request: LineRequest) -> EngineIdentity:
        return EngineIdentity(self.name, espeak_version())

    def synthesise(self, request: LineRequest) -> Synthesised:
        if request.text is None:
            raise VoiceError(f"{request.who()}: an espeak line needs text")
        settings = self.voice_settings(request)
        if settings["wpm"] != round(NORMAL_WPM * request.character.speed):
            logger.warning(
                "%s: speed %g is outside espeak-ng's range; using %d words a minute",
                request.who(),
                request.character.speed,
                settings["wpm"],
            )
        with tempfile.TemporaryDirectory(prefix="multitalk-espeak-") as folder:
            out = Path(folder) / "line.wav"
            command = [
                espeak_binary(),
                "-v",
                str(settings["voice"]),
                "-s",
                str(settings["wpm"]),
                "-p",
                str(settings["pitch"]),
                "-b",
                "1",  # input is UTF-8
                "-w",
                str(out),
                "--stdin",
            ]
            result = subprocess.run(command, input=request.text.encode("utf-8"), capture_output=True, check=False)
            message = result.stderr.decode("utf-8", "replace").strip()
            if result.returncode != 0 or not out.is_file():
                if "voice does not exist" in message:
                    raise VoiceError(
                        f"{request.who()}: espeak-ng has no voice {settings['voice']!r}; "
                        "list them with `espeak-ng --voices` (variants: `espeak-ng --voices=variant`)"
                    )
                raise VoiceError(f"{request.who()}: espeak-ng failed ({result.returncode}): {message[-500:]}")
            samples, rate = read_wav(out)
        return Synthesised(samples, rate)
