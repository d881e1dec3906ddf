"""Scene clips and the final video: stream-copied segments, the scenes' AAC packets, subtitles.

Video is never re-encoded after a chunk, and audio is encoded once. A scene on the 8-frame grid (every scene with a
`tail`; see multitalk/timing.py) keeps its AAC packets beside its clip (`scene_audio.py`), and a final made of such
scenes joins those packets by stream copy, so an edit of one scene costs that scene's work plus a copy of the rest.
A scene that must end exactly with its audio (`tail: 0`, as `multitalk import` writes) is not whole packets: its
clip encodes its mix as it is, and a final holding one joins the scenes' mixes sample-exactly and encodes them once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import ffmpeg

from multitalk.media.ffmpeg import BITEXACT, concat_input, run
from multitalk.media.scene_audio import AUDIO_CODEC, join_scene_audio, scene_audio_input

MP4 = {"movflags": "+faststart", "f": "mp4"}


def assemble_scene_clip(segments: list[Path], audio: Path, out: Path, *, packets: bool) -> None:
    """Concatenate a scene's chunk segments (stream copy) with its audio: its AAC packets, or its mix encoded."""
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        video = concat_input(segments, Path(work) / "segments.txt")
        sound = scene_audio_input(audio) if packets else ffmpeg.input(str(audio))
        codec = {"c:a": "copy"} if packets else AUDIO_CODEC
        run(ffmpeg.output(video["v:0"], sound["a:0"], str(out), **{"c:v": "copy"}, **codec, **BITEXACT, **MP4))


def stitch_final(
    scene_clips: list[Path],
    scene_packets: list[Path] | None,
    scene_mixes: list[Path],
    subtitles_srt: Path | None,
    out: Path,
) -> None:
    """The final MP4: scene videos stream-copied; the scenes' packets joined (or, without them, the mixes joined
    sample-exactly and encoded once); soft subtitles."""
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        video = concat_input(scene_clips, Path(work) / "videos.txt")
        if scene_packets is not None:
            joined = Path(work) / "audio.aac"
            join_scene_audio(scene_packets, joined)
            audio, options = scene_audio_input(joined), {"c:v": "copy", "c:a": "copy"}
        else:
            audio, options = concat_input(scene_mixes, Path(work) / "audios.txt"), {"c:v": "copy", **AUDIO_CODEC}
        streams = [video["v:0"], audio["a:0"]]
        if subtitles_srt is not None:
            streams.append(ffmpeg.input(str(subtitles_srt))["s:0"])
            options.update({"c:s": "mov_text", "metadata:s:s:0": "language=eng"})
        run(ffmpeg.output(*streams, str(out), **options, **BITEXACT, **MP4))
