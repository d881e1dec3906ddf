"""The Coqui TTS engine (`coqui-tts`, the optional `tts` extra): local models only, never a download.

`Character.model` is either a local folder (or model file) with `config.json` beside it, relative to the
screenplay's folder or absolute, or a Coqui model name (`tts_models/en/vctk/vits`) already present in the local
TTS model folder (`$TTS_HOME/tts`, else `$XDG_DATA_HOME/tts`, else `~/.local/share/tts`, as Coqui itself
stores them). Renders run on machines without a network, so a missing model is an error that says where we
looked and the command that fetches it on a connected machine.

Multi-speaker models take `Character.voice` as the speaker id; cloning models (XTTS, YourTTS) take
`Character.speaker_wav`; multilingual ones get `Character.language`. `Character.speed` scales VITS-family
durations (`length_scale`) and is passed to XTTS as `speed`.

The package is imported lazily (it pulls torch, librosa, numba...), and loaded models are kept per process, keyed
by their file fingerprint, so a scene of many lines loads its model once.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multitalk.audio.engine import EngineIdentity, LineRequest, Synthesised, VoiceError
from multitalk.store.keys import file_digest

logger = logging.getLogger(__name__)

DISTRIBUTION = "coqui-tts"
INSTALL_HINT = "pip install 'multitalk[tts]'"
MODEL_FILE_NAMES = ("model_file.pth", "model_file.pth.tar", "model.pth", "checkpoint.pth", "best_model.pth")
# Files beside the checkpoint that change the voice (speaker tables, vocabularies) and so join the fingerprint.
SIDE_FILES = (
    "speakers.pth",
    "speakers.json",
    "speaker_ids.json",
    "speakers_xtts.pth",
    "language_ids.json",
    "vocab.json",
)
SYNTHESIS_SEED = 0  # the same line always sounds the same (VITS and XTTS sample noise)
MAX_LOADED_MODELS = 2  # an XTTS model holds ~2 GB; keep the two most recent

_lock = threading.Lock()  # guards the loaded-model cache and inference (a model is not re-entrant)
_loaded: OrderedDict[str, Any] = OrderedDict()


def coqui_version() -> str:
    """The installed coqui-tts version, without importing it; VoiceError naming the extra when absent."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise VoiceError(
            f"the coqui voice engine needs the Coqui TTS package, which is not installed; run `{INSTALL_HINT}` "
            "(or give the character `engine: espeak`)"
        ) from None


def tts_model_home() -> Path:
    """Where Coqui keeps downloaded models (the same rule as Coqui's own `get_user_data_dir("tts")`)."""
    if os.environ.get("TTS_HOME"):
        base = Path(os.environ["TTS_HOME"]).expanduser()
    elif os.environ.get("XDG_DATA_HOME"):
        base = Path(os.environ["XDG_DATA_HOME"]).expanduser()
    elif sys.platform == "darwin":
        base = Path("~/Library/Application Support").expanduser()
    elif sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path.home() / ".local" / "share"
    return base / "tts"


def _is_model_name(value: str) -> bool:
    parts = value.split("/")
    return len(parts) == 4 and parts[0] in ("tts_models", "voice_conversion_models") and all(parts)


def _fetch_command(name: str) -> str:
    return f"python -c \"from TTS.utils.manage import ModelManager; ModelManager().download_model('{name}')\""


@dataclass(frozen=True)
class CoquiModel:
    """A local Coqui model: its checkpoint, its config, and the files that define its voices."""

    requested: str  # what the screenplay wrote
    folder: Path
    model_file: Path
    config_file: Path
    architecture: str  # the config's `model` ("vits", "xtts", ...)
    side_files: tuple[Path, ...]

    def fingerprint(self) -> dict[str, str]:
        """sha256 of every file that shapes the voice, by file name (part of the line cache key)."""
        files = [self.model_file, self.config_file, *self.side_files]
        return {path.name: file_digest(path) for path in files}

    @property
    def loads_from_folder(self) -> bool:
        """XTTS-style models load from their folder (several checkpoints), others from the checkpoint file."""
        return self.architecture in ("xtts", "tortoise", "bark")


def _find_model_file(folder: Path) -> Path | None:
    for name in MODEL_FILE_NAMES:
        if (folder / name).is_file():
            return folder / name
    checkpoints = [p for p in folder.glob("*.pth") if p.name not in SIDE_FILES]
    return checkpoints[0] if len(checkpoints) == 1 else None


def _side_files(folder: Path, config: dict[str, Any]) -> tuple[Path, ...]:
    found = {folder / name for name in SIDE_FILES if (folder / name).is_file()}
    sections = [config, config.get("model_args") or {}]
    for section in sections:
        for key in ("speakers_file", "d_vector_file", "language_ids_file"):
            value = section.get(key)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and item and Path(item).is_file():
                    found.add(Path(item))
    return tuple(sorted(found))


def resolve_model(request: LineRequest) -> CoquiModel:
    """Find the character's model on this machine; VoiceError saying where we looked and how to fetch it."""
    requested = request.character.model
    if not requested:
        raise VoiceError(f"{request.who()}: a coqui voice needs `model:` (a local model folder or a model name)")
    candidates: list[Path] = []
    as_path = Path(requested).expanduser()
    if not as_path.is_absolute() and request.project_dir is not None:
        as_path = request.project_dir / as_path
    candidates.append(as_path)
    if _is_model_name(requested):
        candidates.append(tts_model_home() / requested.replace("/", "--"))
    for candidate in candidates:
        if candidate.is_file() and candidate.suffix in (".pth", ".pt", ".tar"):
            folder, model_file = candidate.parent, candidate
        elif candidate.is_dir():
            folder, model_file = candidate, _find_model_file(candidate)
            if model_file is None:
                raise VoiceError(
                    f"{request.who()}: Coqui model folder {candidate} has no checkpoint "
                    f"(looked for {', '.join(MODEL_FILE_NAMES)} or a single *.pth)"
                )
        else:
            continue
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise VoiceError(f"{request.who()}: Coqui model {model_file} has no config.json beside it ({folder})")
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise VoiceError(f"{request.who()}: cannot read {config_file} ({error})") from None
        return CoquiModel(
            requested, folder, model_file, config_file, str(config.get("model", "")), _side_files(folder, config)
        )
    looked = " and ".join(str(c) for c in candidates)
    if _is_model_name(requested):
        fetch = (
            f"models are never downloaded during a render: on a connected machine run `{_fetch_command(requested)}` "
            f"(add COQUI_TOS_AGREED=1 for XTTS), then copy the folder {requested.replace('/', '--')} from its "
            f"TTS model folder (`~/.local/share/tts`) to {tts_model_home()} here (set TTS_HOME to use another place)"
        )
    else:
        fetch = (
            "point `model:` at a folder holding the checkpoint (model.pth) and config.json, or at a Coqui model name "
            f"like tts_models/en/vctk/vits fetched with `{_fetch_command('tts_models/en/vctk/vits')}` "
            "on a connected machine"
        )
    raise VoiceError(f"{request.who()}: Coqui model {requested!r} not found (looked in {looked}); {fetch}")


def _import_api() -> Any:
    """`TTS.api.TTS`, or a VoiceError that says how to install it."""
    coqui_version()
    try:
        from TTS.api import TTS
    except ImportError as error:
        raise VoiceError(
            f"the Coqui TTS package is installed but does not import ({error}); reinstall it with `{INSTALL_HINT}`"
        ) from None
    except OSError as error:  # typically torchaudio's CUDA extension on a CPU-only torch
        raise VoiceError(
            f"the Coqui TTS package does not import: {error}. PyPI's torchaudio wheels link CUDA libraries a CPU "
            "torch lacks; remove the compiled extension (`rm <site-packages>/torchaudio/lib/*.so`; torchaudio "
            "runs without it) — the project's install script does this"
        ) from None
    return TTS


def _load(model: CoquiModel) -> Any:
    """The loaded model (cached per process by content); call with `_lock` held."""
    key = json.dumps(model.fingerprint(), sort_keys=True)
    if key in _loaded:
        _loaded.move_to_end(key)
        return _loaded[key]
    api_class = _import_api()
    logger.info("loading Coqui model %s from %s", model.requested, model.folder)
    source = model.folder if model.loads_from_folder else model.model_file
    api = api_class(model_path=str(source), config_path=str(model.config_file), progress_bar=False)
    _loaded[key] = api
    while len(_loaded) > MAX_LOADED_MODELS:
        _loaded.popitem(last=False)
    return api


class CoquiEngine:
    """Coqui TTS models: single- or multi-speaker, cloning from a recording, multilingual."""

    name = "coqui"

    def voice_settings(self, request: LineRequest) -> dict[str, Any]:
        character = request.character
        clone = character.speaker_wav_path
        return {
            "speaker": character.voice,
            "language": character.language,
            "speed": character.speed,
            "speaker_wav_sha256": file_digest(clone) if clone is not None else None,
        }

    def identity(self, request: LineRequest) -> EngineIdentity:
        version = coqui_version()
        model = resolve_model(request)
        return EngineIdentity(
            self.name, version, {"model": model.requested, "architecture": model.architecture, **model.fingerprint()}
        )

    def synthesise(self, request: LineRequest) -> Synthesised:
        if request.text is None:
            raise VoiceError(f"{request.who()}: a coqui line needs text")
        model = resolve_model(request)
        character = request.character
        with _lock:
            api = _load(model)
            kwargs: dict[str, Any] = {}
            if api.is_multi_speaker:
                if character.speaker_wav_path is not None:
                    kwargs["speaker_wav"] = str(character.speaker_wav_path)
                elif character.voice:
                    speakers = list(api.speakers or [])
                    if speakers and character.voice not in speakers:
                        shown = ", ".join(speakers[:20]) + (" ..." if len(speakers) > 20 else "")
                        raise VoiceError(
                            f"{request.who()}: Coqui model {model.requested!r} has no speaker {character.voice!r} "
                            f"(speakers: {shown})"
                        )
                    kwargs["speaker"] = character.voice
                else:
                    raise VoiceError(
                        f"{request.who()}: Coqui model {model.requested!r} has several speakers; choose one with "
                        "`voice:` (a speaker id) or clone a voice with `speaker_wav:`"
                    )
            elif character.voice or character.speaker_wav_path is not None:
                raise VoiceError(
                    f"{request.who()}: Coqui model {model.requested!r} has a single speaker; remove `voice:` and "
                    "`speaker_wav:` from the character (or use a multi-speaker or cloning model)"
                )
            if api.is_multi_lingual:
                kwargs["language"] = character.language
            tts_model = api.synthesizer.tts_model
            base_scale = getattr(tts_model, "length_scale", None)
            if character.speed != 1.0:
                if model.architecture == "xtts":
                    kwargs["speed"] = character.speed
                elif base_scale is not None:
                    tts_model.length_scale = base_scale / character.speed
                else:
                    logger.warning("%s: model %s cannot change speed; ignoring it", request.who(), model.requested)
            try:
                import torch

                # Coqui samples noise from torch's global generator; a fixed seed inside a forked RNG state makes a
                # line reproducible without disturbing anyone else's random stream.
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(SYNTHESIS_SEED)
                    wav = api.tts(request.text, **kwargs)
            except (ValueError, KeyError, RuntimeError) as error:
                raise VoiceError(f"{request.who()}: Coqui model {model.requested!r} failed: {error}") from None
            finally:
                if base_scale is not None:
                    tts_model.length_scale = base_scale
            rate = int(api.synthesizer.output_sample_rate)
        samples = np.asarray(wav, dtype=np.float32).reshape(-1)
        return Synthesised(samples, rate)
