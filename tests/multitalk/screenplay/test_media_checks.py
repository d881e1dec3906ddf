"""Recordings that are videos: the sound of a video is a recording, a video without sound is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from multitalk.media.ffmpeg import ffmpeg_binary
from multitalk.screenplay.media_checks import MediaProblem, check_recording


def video(path: Path, *, with_audio: bool) -> Path:
    command = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=5"]
    if with_audio:
        command += ["-f", "lavfi", "-i", "sine=frequency=220:sample_rate=16000"]
    command += ["-t", "1", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-y", str(path)]
    subprocess.run(command, check=True)
    return path


def test_a_video_without_sound_is_refused(tmp_path: Path) -> None:
    silent = video(tmp_path / "take.mp4", with_audio=False)
    with pytest.raises(MediaProblem) as caught:
        check_recording(silent, -45.0)
    assert str(caught.value) == (
        "take.mp4 has no audio stream (streams: video); a recorded line needs sound — export the audio track"
    )


def test_the_sound_of_a_video_is_a_recording(tmp_path: Path) -> None:
    facts = check_recording(video(tmp_path / "take.mp4", with_audio=True), -45.0)
    assert facts.peak > 0.1 and 0.9 < facts.duration < 1.2
