"""InfiniteTalk's chunk geometry (9 motion frames -> 72 new frames per 81-frame chunk) where chunks are counted."""

from __future__ import annotations

import pytest

from multitalk.generation.streaming import chunk_count, plan_chunks
from multitalk.model.chunk_geometry import geometry_for_family
from multitalk.model.configs import CONFIGS
from multitalk.renderers.registry import _make


def test_the_released_geometries():
    infinitetalk, multitalk = geometry_for_family("infinitetalk"), geometry_for_family("multitalk")
    assert (infinitetalk.frame_num, infinitetalk.motion_frames, infinitetalk.advance) == (81, 9, 72)
    assert (multitalk.frame_num, multitalk.motion_frames, multitalk.advance) == (81, 25, 56)
    assert CONFIGS["infinitetalk-14b"].latent_frames == 21
    assert CONFIGS["infinitetalk-14b"].geometry == infinitetalk and CONFIGS["multitalk-14b"].geometry == multitalk
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


def test_plan_counts_infinitetalk_scenes_with_72_new_frames_per_chunk(tmp_path):
    from PIL import Image

    from multitalk.generation.gpu_plan import card, plan_screenplay
    from multitalk.model.configs import get_config
    from multitalk.screenplay import load_screenplay

    Image.new("RGB", (640, 360)).save(tmp_path / "two.png")
    words = " ".join(["word"] * 60)  # long enough for several chunks
    (tmp_path / "play.yaml").write_text(
        "title: Plan\ncharacters: {mia: en-us+f3}\nscenes:\n"
        f"  - id: still\n    image: two.png\n    lines:\n      - mia: {words}\n"
        f"  - id: long\n    image: two.png\n    model: infinitetalk\n    lines:\n      - mia: {words}\n"
    )
    plan = plan_screenplay(load_screenplay(tmp_path / "play.yaml"), get_config("multitalk-14b"), card("h100"))
    still, long = plan.scenes
    assert still.frames == long.frames > 2 * 81
    assert still.chunks == chunk_count(still.frames, geometry_for_family("multitalk"))
    assert long.chunks == chunk_count(long.frames, geometry_for_family("infinitetalk")) < still.chunks
