"""Fixtures for the audio tests: small screenplays on disk and a tiny Coqui VITS model built from a config."""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from multitalk.screenplay import Screenplay, load_screenplay_with_source
from multitalk.screenplay.yaml_source import SourceMap

ProjectWriter = Callable[[str], tuple[Screenplay, SourceMap]]


@pytest.fixture
def write_project(tmp_path: Path) -> ProjectWriter:
    """`write(yaml) -> (screenplay, source)`: the YAML saved as tmp_path/play.yaml beside a small scene.png."""

    def write(text: str) -> tuple[Screenplay, SourceMap]:
        Image.new("RGB", (64, 48), (90, 120, 150)).save(tmp_path / "scene.png")
        path = tmp_path / "play.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return load_screenplay_with_source(path)

    return write


def _build_vits(folder: Path, speakers: list[str] | None) -> Path:
    """A VITS with random weights, a few hundred thousand parameters: real loading and synthesis code, fast."""
    import torch
    from TTS.tts.configs.shared_configs import BaseAudioConfig
    from TTS.tts.configs.vits_config import VitsArgs, VitsConfig
    from TTS.tts.models.vits import Vits

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    args = VitsArgs(
        hidden_channels=16,
        hidden_channels_ffn_text_encoder=32,
        num_heads_text_encoder=2,
        num_layers_text_encoder=1,
        num_layers_posterior_encoder=1,
        num_layers_flow=1,
        upsample_initial_channel_decoder=16,
        resblock_kernel_sizes_decoder=[3],
        resblock_dilation_sizes_decoder=[[1, 3, 5]],
        use_sdp=False,
        init_discriminator=False,
        speaker_embedding_channels=8,
    )
    config = VitsConfig(
        model_args=args,
        use_phonemes=False,  # characters in, so the test needs no phonemizer
        text_cleaner="basic_cleaners",
        audio=BaseAudioConfig(sample_rate=22050),
        test_sentences=[],
    )
    if speakers:
        speakers_file = folder / "speakers.pth"
        torch.save({name: index for index, name in enumerate(speakers)}, speakers_file)
        for section in (args, config):
            section.use_speaker_embedding = True
            section.num_speakers = len(speakers)
            section.speakers_file = str(speakers_file)
    model = Vits(config)
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    return folder


@pytest.fixture(scope="session")
def tiny_coqui_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"single": folder, "multi": folder} of tiny VITS models (multi has speakers anna and ben)."""
    if importlib.util.find_spec("TTS") is None:
        pytest.skip("the Coqui TTS package (optional extra `tts`) is not installed: pip install 'multitalk[tts]'")
    try:
        import TTS.api  # noqa: F401
    except (ImportError, OSError) as error:
        pytest.skip(f"the Coqui TTS package does not import here ({error})")
    root = tmp_path_factory.mktemp("coqui")
    return {"single": _build_vits(root / "single", None), "multi": _build_vits(root / "multi", ["anna", "ben"])}
