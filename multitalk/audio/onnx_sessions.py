"""ONNX Runtime sessions that start fast: a model's optimised graph is saved once and loaded from then on.

Creating a session spends most of its time optimising the graph (0.47-0.62 s for a medium Piper voice on our
2-core machine), and a render loads its voices afresh in every command. ONNX Runtime can save the graph it
optimised and load that instead (0.28 s). The saved graph is optimised at the portable level
(`ORT_ENABLE_EXTENDED`: no hardware-specific layouts), keyed by the model's digest and the onnxruntime version,
and written atomically; the layout passes still run at load, so inference is as fast as from the original file.
Any failure to save or load the cached graph falls back to the original model file.

The cache folder is `MULTITALK_ONNX_CACHE`, else `$XDG_CACHE_HOME/multitalk/onnx` (`~/.cache/...`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from multitalk.store.keys import file_digest

logger = logging.getLogger(__name__)

CACHE_ENV = "MULTITALK_ONNX_CACHE"


def cache_folder() -> Path:
    """Where optimised graphs are kept."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "multitalk" / "onnx"


def cached_graph(model_file: Path) -> Path:
    """The optimised graph's path for this model file and this onnxruntime (it may not exist yet)."""
    import onnxruntime

    return cache_folder() / f"{model_file.stem}-{file_digest(model_file)[:16]}-ort{onnxruntime.__version__}.onnx"


def fast_session(model_file: Path, providers: list[str]) -> Any:
    """An `onnxruntime.InferenceSession` of `model_file`, from its cached optimised graph when there is one."""
    import onnxruntime

    graph = cached_graph(model_file)
    if not graph.is_file():
        _save_optimised(model_file, graph, providers)
    if graph.is_file():
        try:
            return onnxruntime.InferenceSession(str(graph), providers=providers)
        except Exception as error:  # a damaged or foreign file: the original model still works
            logger.warning("ignoring the cached ONNX graph %s (%s)", graph, error)
            with contextlib.suppress(OSError):
                graph.unlink()
    return onnxruntime.InferenceSession(str(model_file), providers=providers)


def _save_optimised(model_file: Path, graph: Path, providers: list[str]) -> None:
    """Write the model's portably optimised graph to `graph`, atomically; best effort (a cache, not a product).

    Done the first time a model is loaded on a machine: that load costs one optimisation more (~0.3 s).
    """
    import onnxruntime

    temp = graph.with_name(f".{graph.name}.{os.getpid()}.tmp")
    try:
        graph.parent.mkdir(parents=True, exist_ok=True)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(temp)
        onnxruntime.InferenceSession(str(model_file), sess_options=options, providers=providers)
        os.replace(temp, graph)
    except Exception as error:  # read-only home, full disk, an ORT that cannot serialise: load from the model
        logger.info("could not cache the optimised ONNX graph of %s (%s)", model_file.name, error)
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
