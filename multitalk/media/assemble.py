"""Scene clips and the final video: stream-copied segments, the scenes' AAC packets, subtitles.

Nothing is encoded twice. Scene clips concatenate chunk segments and mux the scene's audio packets
(`scene_audio.py`, encoded once per scene); the final concatenates the scene clips' video and the scenes' packets,
both by stream copy, so an edit of one scene costs that scene's work plus a copy of the rest.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import ffmpeg

from multitalk.media.ffmpeg import BITEXACT, concat_input, run
from multitalk.media.scene_audio import join_scene_audio, scene_audio_input

MP4 = {"movflags": "+faststart", "f": "mp4"}


def assemble_scene_clip(segments: list[Path], scene_audio: Path, out: Path) -> None:
    """Concatenate a scene's chunk segments and mux its AAC packets, both by stream copy."""
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        video = concat_input(segments, Path(work) / "segments.txt")
        audio = scene_audio_input(scene_audio)
        run(ffmpeg.output(video["v:0"], audio["a:0"], str(out), c="copy", **BITEXACT, **MP4))


def stitch_final(scene_clips: list[Path], scene_audio: list[Path], subtitles_srt: Path | None, out: Path) -> None:
    """The final MP4: scene videos and the scenes' AAC packets stream-copied one after another, soft subtitles."""
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        video = concat_input(scene_clips, Path(work) / "videos.txt")
        joined = Path(work) / "audio.aac"
        join_scene_audio(scene_audio, joined)
        streams = [video["v:0"], scene_audio_input(joined)["a:0"]]
        options = {"c:v": "copy", "c:a": "copy"}
        if subtitles_srt is not None:
            streams.append(ffmpeg.input(str(subtitles_srt))["s:0"])
            options.update({"c:s": "mov_text", "metadata:s:s:0": "language=eng"})
        run(ffmpeg.output(*streams, str(out), **options, **BITEXACT, **MP4))
