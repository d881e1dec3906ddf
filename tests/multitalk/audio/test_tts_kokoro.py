"""The Kokoro engine without its weights: the model-folder layout, voice look-up and the not-installed message.

Synthesis itself needs Kokoro-82M's weights (327 MB, never downloaded here); these tests cover everything before
the model runs, which is where an author's mistakes are.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from multitalk.audio import kokoro
from multitalk.audio.engine import LineRequest, VoiceError
from multitalk.screenplay.schema import Character


def _release(folder: Path, voices: tuple[str, ...] = ("af_heart", "am_adam", "bf_emma")) -> Path:
    """A folder in the hexgrad/Kokoro-82M layout (placeholder bytes: only the layout is under test)."""
    (folder / "voices").mkdir(parents=True)
    (folder / "config.json").write_text('{"n_token": 178}')
    (folder / "kokoro-v1_0.pth").write_bytes(b"weights")
    for voice in voices:
        (folder / "voices" / f"{voice}.pt").write_bytes(voice.encode())
    return folder


def test_release_layout_is_read(tmp_path):
    model = kokoro.read_model(_release(tmp_path / "kokoro"))
    assert list(model.voices) == ["af_heart", "am_adam", "bf_emma"]
    assert model.weights_file.name == "kokoro-v1_0.pth"
    assert set(model.fingerprint()) == {"config.json", "kokoro-v1_0.pth"}


def test_missing_folder_and_missing_parts_are_named(tmp_path):
    with pytest.raises(VoiceError, match=r"Kokoro model folder .*nowhere not found"):
        kokoro.read_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VoiceError) as caught:
        kokoro.read_model(tmp_path / "empty")
    assert "lacks config.json, one weights file *.pth, voices/*.pt" in str(caught.value)
    assert "hexgrad/Kokoro-82M layout" in str(caught.value)


def test_model_folder_is_relative_to_the_project_or_from_the_environment(tmp_path, monkeypatch):
    assert kokoro.model_folder("models/kokoro", tmp_path) == tmp_path / "models" / "kokoro"
    monkeypatch.delenv(kokoro.MODEL_ENV, raising=False)
    assert kokoro.model_folder(None, tmp_path) is None
    with pytest.raises(
        VoiceError, match=r"a kokoro voice needs `model:`.*MULTITALK_KOKORO_MODEL; nothing is downloaded"
    ):
        kokoro.find_model(None, tmp_path)
    monkeypatch.setenv(kokoro.MODEL_ENV, str(tmp_path / "shared"))
    assert kokoro.model_folder(None, tmp_path) == tmp_path / "shared"


def test_unknown_voice_lists_close_matches(tmp_path):
    model = kokoro.read_model(_release(tmp_path / "kokoro"))
    assert kokoro.check_voice(model, "af_heart").name == "af_heart.pt"
    with pytest.raises(VoiceError) as caught:
        kokoro.check_voice(model, "af_haert")
    assert "no Kokoro voice 'af_haert'" in str(caught.value) and "did you mean 'af_heart'?" in str(caught.value)


def test_voice_settings_key_the_voice_file_contents(tmp_path):
    _release(tmp_path / "kokoro")
    request = LineRequest("amy", Character(engine="kokoro", model="kokoro", voice="af_heart"), "Hi", None, tmp_path)
    settings = kokoro.KokoroEngine().voice_settings(request)
    assert settings["voice"] == "af_heart" and settings["speed"] == 1.0
    (tmp_path / "kokoro" / "voices" / "af_heart.pt").write_bytes(b"another voice")
    assert kokoro.KokoroEngine().voice_settings(request)["voice_sha256"] != settings["voice_sha256"]


def test_synthesis_without_the_package_names_the_extra(tmp_path, monkeypatch):
    _release(tmp_path / "kokoro")
    monkeypatch.setattr(kokoro, "kokoro_version", lambda: None)
    request = LineRequest("amy", Character(engine="kokoro", model="kokoro", voice="af_heart"), "Hi", None, tmp_path)
    with pytest.raises(VoiceError, match=r"needs the kokoro package.*pip install 'multitalk\[kokoro\]'"):
        kokoro.KokoroEngine().synthesise(request)


def _tiny_release(folder: Path) -> Path:
    """A Kokoro release in the official layout with random weights: Kokoro-82M's architecture with one layer
    where the config allows it (its decoder's widths are fixed), so the real loading and synthesis code runs."""
    import json

    import torch
    from kokoro.istftnet import Decoder
    from kokoro.modules import CustomAlbert, ProsodyPredictor, TextEncoder
    from transformers import AlbertConfig

    symbols = "abcdefghijklmnopqrstuvwxyzðŋɐɑɔəɛɡɣɪɲɾʃʊʎʒʝβθχˈˌː.,!?;: "
    plbert = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 512,
              "num_hidden_layers": 1, "dropout": 0.1}  # fmt: skip
    istftnet = {"upsample_rates": [10, 6], "upsample_kernel_sizes": [20, 12], "gen_istft_n_fft": 20,
                "gen_istft_hop_size": 5, "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]],
                "upsample_initial_channel": 512}  # fmt: skip
    config = {"n_token": 178, "hidden_dim": 512, "style_dim": 128, "n_layer": 1, "n_mels": 80, "max_dur": 10,
              "text_encoder_kernel_size": 5, "dropout": 0.2, "plbert": plbert, "istftnet": istftnet,
              "vocab": {s: i + 1 for i, s in enumerate(symbols)}}  # fmt: skip
    (folder / "voices").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    parts = {
        "bert": CustomAlbert(AlbertConfig(vocab_size=178, **plbert)),
        "bert_encoder": torch.nn.Linear(32, 512),
        "predictor": ProsodyPredictor(style_dim=128, d_hid=512, nlayers=1, max_dur=10, dropout=0.2),
        "text_encoder": TextEncoder(channels=512, kernel_size=5, depth=1, n_symbols=178),
        "decoder": Decoder(dim_in=512, style_dim=128, dim_out=80, **istftnet),
    }
    torch.save({name: part.state_dict() for name, part in parts.items()}, folder / "kokoro-v1_0.pth")
    torch.save(torch.randn(510, 1, 256) * 0.1, folder / "voices" / "ef_dora.pt")  # (tokens, 1, 2 x style)
    return folder


@pytest.mark.slow
def test_a_line_through_the_real_kokoro_package_from_a_local_folder(tmp_path):
    """Real kokoro code on a random-weight release: loads offline, speaks at 24 kHz (Spanish: espeak G2P, no
    spaCy model needed), and the same line twice gives the same samples."""
    pytest.importorskip("kokoro", reason="the kokoro extra is not installed (pip install -e '.[kokoro]')")
    import numpy as np

    _tiny_release(tmp_path / "kokoro")
    request = LineRequest("ana", Character(engine="kokoro", model="kokoro", voice="ef_dora"), "Hola, ¿qué tal?",
                          None, tmp_path)  # fmt: skip
    engine = kokoro.KokoroEngine()
    first = engine.synthesise(request)
    assert first.sample_rate == kokoro.SAMPLE_RATE == 24_000
    assert first.samples.dtype == np.float32 and first.samples.size > 0.2 * 24_000
    assert np.isfinite(first.samples).all() and np.abs(first.samples).max() > 0
    assert np.array_equal(engine.synthesise(request).samples, first.samples)
    assert engine.identity(request).version == kokoro.kokoro_version()
