"""A tiny random InfiniteTalk release in the official folder layout, plus a tiny take to dub, for tests and benches.

`write_tiny_infinitetalk_release(root)` writes what an InfiniteTalk user downloads (the official layout), at
the sizes of `CONFIGS["tiny-infinitetalk"]`, with seeded random weights:

    Wan2.1-I2V-14B-480P/                the base (7 DiT shards, config.json, VAE, T5, CLIP, tokenizers)
    chinese-wav2vec2-base/
    InfiniteTalk/single/infinitetalk.safetensors    audio adapter keys (one speaker)
    InfiniteTalk/multi/infinitetalk.safetensors     audio adapter keys, other values (two speakers)

The base comes from the MultiTalk writer (`multitalk.testing.tiny_release`); its `MeiGen-MultiTalk/` folder is
removed, since an InfiniteTalk release does not have it. `overrides` adds copies of some base keys (other
values) to both adapter files, to exercise "the InfiniteTalk file wins".
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import ffmpeg
import numpy as np
import torch
from safetensors.torch import save_file

from multitalk.media.ffmpeg import command
from multitalk.model import infinitetalk_weights as ITW
from multitalk.model import release as R
from multitalk.model.configs import CONFIGS, ModelConfig
from multitalk.model.dit import MultiTalkDiT
from multitalk.testing.tiny_release import _meta_shapes, _random_state, is_audio_adapter_key, write_tiny_release


def write_tiny_infinitetalk_release(
    root: Path,
    config: ModelConfig = CONFIGS["tiny-infinitetalk"],
    seed: int = 0,
    *,
    variants: Sequence[str] = ITW.VARIANTS,
    overrides: Sequence[str] = (),
) -> Path:
    """Write the base + the InfiniteTalk files of `variants` under `root`; the same seed writes the same bytes."""
    root = Path(root)
    write_tiny_release(root, config, layout="side_by_side", seed=seed)
    shutil.rmtree(root / R.MULTITALK_DIR)
    shapes = _meta_shapes(lambda: MultiTalkDiT(config.dit))
    wanted = {k: s for k, s in shapes.items() if is_audio_adapter_key(k) or k in overrides}
    unknown = sorted(set(overrides) - set(shapes))
    if unknown:
        raise ValueError(f"override keys {unknown} are not DiT keys")
    for i, variant in enumerate(ITW.VARIANTS):
        generator = torch.Generator().manual_seed(seed * 1000 + 101 + i)
        state = _random_state(wanted, generator)  # float32, as the tiny base
        if variant not in variants:
            continue
        path = ITW.adapter_path(root, variant)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"format": "pt"})
    return root


def write_tiny_take(
    path: Path, frames: int, size_hw: tuple[int, int] = (60, 110), fps: int = 30, seed: int = 0
) -> Path:
    """A short H.264 video (a moving gradient with noise) at `fps`, to dub; `frames` frames of `size_hw`."""
    h, w = size_hw
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    video = np.stack([np.roll(base, 3 * i, axis=1) for i in range(frames)])  # (frames, h, w, 3)
    graph = ffmpeg.input("pipe:", f="rawvideo", pix_fmt="rgb24", s=f"{w}x{h}", r=fps).output(
        str(path), vcodec="libx264", preset="ultrafast", qp=0, pix_fmt="yuv444p"
    )
    subprocess.run(command(graph), input=video.tobytes(), check=True, capture_output=True)
    return Path(path)
