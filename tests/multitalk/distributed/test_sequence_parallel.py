"""Ulysses sequence parallel over 2 and 4 gloo processes equals the single-process DiT forward (fp32)."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.distributed as dist

from multitalk.distributed.launch import spawn
from multitalk.distributed.sequence_parallel import SequenceShard, split_counts
from tests.multitalk.distributed.workers import dit_cases, sequence_parallel_rank, single_forward, tiny_dit

logger = logging.getLogger(__name__)
TOLERANCE = 1e-5  # fp32: reordered sums only


def test_split_counts_cover_the_sequence_unevenly():
    assert split_counts(27, 4) == [7, 7, 7, 6]
    assert split_counts(8, 2) == [4, 4]
    with pytest.raises(ValueError, match="cannot cut 3 tokens into 4"):
        split_counts(3, 4)


@pytest.fixture(scope="module")
def single(one_torch_thread):
    model = tiny_dit()
    return {name: single_forward(model, args) for name, args in dit_cases().items()}


@pytest.mark.parametrize("world", [2, 4])
def test_sequence_parallel_forward_equals_single_process(world, single, tmp_path):
    spawn(sequence_parallel_rank, world, (str(tmp_path),))
    for rank in range(world):
        outputs = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert outputs.keys() == single.keys()
        for name, reference in single.items():
            diff = (outputs[name] - reference).abs().max().item()
            logger.info("world %d rank %d %s: max abs diff %.3g", world, rank, name, diff)
            print(f"world {world} rank {rank} {name}: max abs diff {diff:.3g}")
            assert outputs[name].shape == reference.shape
            assert diff <= TOLERANCE * max(1.0, reference.abs().max().item()), (name, diff)


def _heads_rank(rank: int, world: int) -> None:
    SequenceShard(None, 27, 6)


def test_heads_not_dividing_the_ranks_is_a_clear_error():
    with pytest.raises(Exception, match="head count divisible by 4; the model has 6 heads"):
        spawn(_heads_rank, 4)
    assert not dist.is_initialized()
