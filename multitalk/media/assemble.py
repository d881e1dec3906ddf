"""Scene clips and the final video: stream-copied segments, the mixed audio, subtitles.

Video is never re-encoded after a chunk: scene clips concatenate chunk segments, the final concatenates scene
clips. The delivery audio (48 kHz mixes) is encoded once per clip, and the final's audio is the scene mixes
concatenated sample-exactly and encoded once, so an edit of one scene costs one scene's work plus a stream copy.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import ffmpeg

from multitalk.media.ffmpeg import BITEXACT, concat_input, run

AUDIO_CODEC = {"c:a": "aac", "b:a": "192k", "ar": 48000}
MP4 = {"movflags": "+faststart", "f": "mp4"}


def assemble_scene_clip(segments: list[Path], mix_wav: Path, out: Path) -> None:
    """Concatenate a scene's chunk segments (stream copy) and mux its 48 kHz mix as AAC."""
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        video = concat_input(segments, Path(work) / "segments.txt")
        audio = ffmpeg.input(str(mix_wav))
        run(ffmpeg.output(video["v:0"], audio["a:0"], str(out), **{"c:v": "copy"}, **AUDIO_CODEC, **BITEXACT, **MP4))


def stitch_final(scene_clips: list[Path], scene_mixes: list[Path], subtitles_srt: Path | None, out: Path) -> None:
    """The final MP4: scene videos stream-copied, scene mixes joined sample-exactly then encoded, soft subtitles."""
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        video = concat_input(scene_clips, Path(work) / "videos.txt")
        audio = concat_input(scene_mixes, Path(work) / "audios.txt")
        streams = [video["v:0"], audio["a:0"]]
        options = {"c:v": "copy", **AUDIO_CODEC}
        if subtitles_srt is not None:
            streams.append(ffmpeg.input(str(subtitles_srt))["s:0"])
            options.update({"c:s": "mov_text", "metadata:s:s:0": "language=eng"})
        run(ffmpeg.output(*streams, str(out), **options, **BITEXACT, **MP4))
