"""The chunk plan delivers exactly N frames, chunk by chunk, with the official 81/25/56 geometry."""

from __future__ import annotations

import numpy as np
import pytest

from multitalk.generation.streaming import audio_window, chunk_count, plan_chunks
from multitalk.model.chunk_geometry import ChunkGeometry


@pytest.mark.parametrize("frames", [1, 2, 80, 81, 82, 137, 138, 250, 1000, 1001, 25 * 600 + 7])
def test_delivered_ranges_tile_the_scene_exactly(frames: int) -> None:
    chunks = plan_chunks(frames)
    assert len(chunks) == chunk_count(frames)
    covered = [f for chunk in chunks for f in range(chunk.deliver_start, chunk.deliver_end)]
    assert covered == list(range(frames))  # every frame once, in order: no L-3 trimming, no 1000-frame cap
    assert all(chunk.frames == 81 for chunk in chunks)
    assert all(chunk.delivered > 0 for chunk in chunks)


def test_official_geometry() -> None:
    first, second, third = plan_chunks(190)
    assert (first.start, first.deliver_start, first.deliver_end, first.motion_frames) == (0, 0, 81, 0)
    # Later chunks re-generate the previous chunk's last 25 frames as motion and add 56 new ones.
    assert (second.start, second.deliver_start, second.deliver_end, second.motion_frames) == (56, 81, 137, 25)
    assert (third.start, third.deliver_start, third.deliver_end) == (112, 137, 190)  # cut at the scene end
    assert second.local_deliver == (25, 81)
    assert second.audio_window(2) == (54, 139)


def test_small_geometry_for_tiny_models() -> None:
    geometry = ChunkGeometry(frame_num=17, motion_frames=5)
    chunks = plan_chunks(50, geometry)
    assert [c.start for c in chunks] == [0, 12, 24, 36]
    assert [f for c in chunks for f in range(c.deliver_start, c.deliver_end)] == list(range(50))
    with pytest.raises(ValueError, match="1 \\+ 4n"):
        ChunkGeometry(frame_num=16, motion_frames=5)


def test_audio_window_pads_with_silence_outside_the_track() -> None:
    track = np.arange(1, 3 * 640 + 1, dtype=np.float32)  # 3 frames
    window = audio_window(track, -2, 5)
    assert window.shape == (7 * 640,)
    assert not window[: 2 * 640].any() and not window[5 * 640 :].any()
    np.testing.assert_array_equal(window[2 * 640 : 5 * 640], track)
