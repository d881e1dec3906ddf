"""InfiniteTalk's chunk geometry (9 motion frames -> 72 new frames per 81-frame chunk) where chunks are counted."""

from __future__ import annotations

import pytest

from multitalk.generation.streaming import chunk_count, plan_chunks
from multitalk.model.configs import CONFIGS, geometry_for_family
from multitalk.renderers.registry import _make


def test_the_released_geometries():
    infinitetalk, multitalk = geometry_for_family("infinitetalk"), geometry_for_family("multitalk")
    assert (infinitetalk.frame_num, infinitetalk.motion_frames, infinitetalk.advance) == (81, 9, 72)
    assert (multitalk.frame_num, multitalk.motion_frames, multitalk.advance) == (81, 25, 56)
    assert CONFIGS["infinitetalk-14b"].latent_frames == 21
    with pytest.raises(ValueError, match="unknown model family"):
        geometry_for_family("wan")


@pytest.mark.parametrize(("frames", "infinitetalk", "multitalk"), [(81, 1, 1), (82, 2, 2), (153, 2, 3), (1500, 21, 27)])
def test_chunk_counts(frames, infinitetalk, multitalk):
    assert chunk_count(frames, geometry_for_family("infinitetalk")) == infinitetalk
    assert chunk_count(frames, geometry_for_family("multitalk")) == multitalk
    chunks = plan_chunks(frames, geometry_for_family("infinitetalk"))
    assert sum(c.delivered for c in chunks) == frames
    assert all(c.delivered == 72 for c in chunks[1:-1])


def test_the_preview_renderer_counts_chunks_like_the_model_it_stands_in_for():
    for family in ("infinitetalk", "multitalk"):
        assert _make("preview", "cpu", None, "multitalk-14b", family).geometry == geometry_for_family(family)
