"""Scene clips and the final video: stream-copied segments, the mixed audio, subtitles.

Video is never re-encoded after a chunk: scene clips concatenate chunk segments, the final concatenates scene
clips. The delivery audio (48 kHz mixes) is encoded once per clip, and the final's audio is the scene mixes
concatenated sample-exactly and encoded once, so an edit of one scene costs one scene's work plus a stream copy.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from multitalk.media.ffmpeg import BITEXACT, concat_list, run_ffmpeg

AUDIO_CODEC = ["-c:a", "aac", "-b:a", "192k", "-ar", "48000"]


def assemble_scene_clip(segments: list[Path], mix_wav: Path, out: Path) -> None:
    """Concatenate a scene's chunk segments (stream copy) and mux its 48 kHz mix as AAC."""
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        listing = concat_list(segments, Path(work) / "segments.txt")
        run_ffmpeg(
            "-f", "concat", "-safe", "0", "-i", str(listing), "-i", str(mix_wav),
            "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", *AUDIO_CODEC, *BITEXACT,
            "-movflags", "+faststart", "-f", "mp4", str(out),
        )  # fmt: skip


def stitch_final(scene_clips: list[Path], scene_mixes: list[Path], subtitles_srt: Path | None, out: Path) -> None:
    """The final MP4: scene videos stream-copied, scene mixes joined sample-exactly then encoded, soft subtitles."""
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        videos = concat_list(scene_clips, Path(work) / "videos.txt")
        audios = concat_list(scene_mixes, Path(work) / "audios.txt")
        inputs = ["-f", "concat", "-safe", "0", "-i", str(videos), "-f", "concat", "-safe", "0", "-i", str(audios)]
        maps = ["-map", "0:v:0", "-map", "1:a:0"]
        codecs = ["-c:v", "copy", *AUDIO_CODEC]
        if subtitles_srt is not None:
            inputs += ["-i", str(subtitles_srt)]
            maps += ["-map", "2:s:0"]
            codecs += ["-c:s", "mov_text", "-metadata:s:s:0", "language=eng"]
        run_ffmpeg(*inputs, *maps, *codecs, *BITEXACT, "-movflags", "+faststart", "-f", "mp4", str(out))
