"""One full chunk sampled guidance-parallel, sequence-parallel and both (2 and 4 gloo ranks) equals one process."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from multitalk.distributed.launch import spawn
from multitalk.distributed.mesh import ParallelLayout, assign_passes
from multitalk.generation.pipeline import ChunkAudio, MultiTalkPipeline, SamplingSettings, SceneSpec
from multitalk.generation.streaming import audio_window, plan_chunks
from multitalk.model.configs import CONFIGS
from multitalk.testing.tiny_release import write_tiny_release, write_tiny_scene
from tests.multitalk.distributed.workers import chunk_rank

logger = logging.getLogger(__name__)
CONFIG = CONFIGS["tiny"]
TOTAL_FRAMES = 30
SEED = 11
THREE_PASS = {"steps": 3}
TWO_PASS = {"steps": 3, "text_guidance": 1.0, "audio_guidance": 3.0}
TOLERANCE = 1e-5


def test_auto_layout_prefers_least_work_then_guidance_groups():
    assert ParallelLayout.auto(8, passes=2, num_heads=40) == ParallelLayout(2, 4)
    assert ParallelLayout.auto(8, passes=3, num_heads=40) == ParallelLayout(1, 8)
    assert ParallelLayout.auto(6, passes=3, num_heads=40) == ParallelLayout(3, 2)
    assert ParallelLayout.auto(2, passes=3, num_heads=40) == ParallelLayout(1, 2)
    assert ParallelLayout.auto(4, passes=3, num_heads=2) == ParallelLayout(2, 2)  # 2 heads: at most 2 a pass
    with pytest.raises(ValueError, match="no way to run 2 guidance passes of a 2-head model on 3 devices"):
        ParallelLayout.auto(3, passes=2, num_heads=2)
    assert assign_passes(3, 2) == [[0, 1], [2]]
    with pytest.raises(ValueError, match="guidance"):
        ParallelLayout(3, 1).check(passes=2, num_heads=40)


@pytest.fixture(scope="module")
def later_chunk(tmp_path_factory, one_torch_thread):
    """A two-person scene's second chunk (motion latent, 3 passes): its conditions and one process's latents."""
    root = tmp_path_factory.mktemp("chunk")
    release = write_tiny_release(root / "weights", CONFIG, seed=0)
    scene = write_tiny_scene(root / "scene", TOTAL_FRAMES, persons=2, seed=3)
    pipeline = MultiTalkPipeline(release, "tiny")
    spec = SceneSpec(scene.image, "two friends talk", ("left", "right"), ("a", "b"), seed=SEED)
    tracks = [sf.read(p, dtype="float32")[0] for p in scene.tracks]
    first, second = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)[:2]

    def audio(chunk):
        start, end = chunk.audio_window(pipeline.audio_margin_frames)
        return ChunkAudio(tuple(audio_window(t, start, end) for t in tracks), start)

    list(pipeline.render_chunk(spec, first, audio(first), None, root / "carry0", SamplingSettings(**THREE_PASS)))
    cond = pipeline.conditions(spec, second, audio(second), root / "carry0", SamplingSettings(**THREE_PASS))
    assert cond.motion is not None and cond.audio.shape[0] == 2
    reference = {
        name: pipeline.sample_latent(cond, SEED, second.index, SamplingSettings(**settings), "480p")
        for name, settings in (("three_pass", THREE_PASS), ("two_pass", TWO_PASS))
    }
    cond_path = root / "cond.pt"
    torch.save({k: v for k, v in vars(cond).items() if v is not None}, cond_path)
    return release, cond_path, second.index, reference


@pytest.mark.slow
@pytest.mark.parametrize(
    ("world", "runs"),
    [
        (2, [("three_pass", 1, 2), ("three_pass", 2, 1), ("two_pass", 2, 1)]),
        (4, [("three_pass", 2, 2), ("two_pass", 2, 2)]),
    ],
)
def test_parallel_chunk_equals_single_process(world, runs, later_chunk, tmp_path):
    release, cond_path, index, reference = later_chunk
    settings = {"three_pass": THREE_PASS, "two_pass": TWO_PASS}
    spec = [(f"{n}_{g}x{s}", g, s, settings[n], SEED, index) for n, g, s in runs]
    spawn(chunk_rank, world, (str(release), str(cond_path), str(tmp_path), spec))
    for rank in range(world):
        latents = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for (name, *_), (kind, _, _) in zip(spec, runs, strict=True):
            expected = reference[kind]
            diff = (latents[name] - expected).abs().max().item()
            print(
                f"world {world} rank {rank} {name}: max abs diff {diff:.3g} (latent scale {expected.abs().max():.3g})"
            )
            assert latents[name].shape == expected.shape
            assert diff <= TOLERANCE * max(1.0, expected.abs().max().item()), (name, diff)
    assert np.isfinite(reference["three_pass"].numpy()).all()
