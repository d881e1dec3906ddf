"""Scene clips and the final video: stream-copied segments, the scenes' AAC packets, subtitles.

Video is never re-encoded after a chunk, and audio is encoded once. A scene on the 8-frame grid (every scene with a
`tail`; see multitalk/timing.py) keeps its AAC packets beside its clip (`scene_audio.py`). Its clip is its
segments joined beside them through their sample tables (`mp4_join.py`: the bytes copied once, no packet muxed
again), and a final made of such scenes joins the clips the same way, so an edit of one scene costs that scene's
work plus a copy of the rest.
A scene that must end exactly with its audio (`tail: 0`, as `multitalk import` writes) is not whole packets: its
clip encodes its mix as it is, and a final holding one joins the scenes' mixes sample-exactly and encodes them once.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import ffmpeg

from multitalk.media.ffmpeg import BITEXACT, concat_input, run
from multitalk.media.mp4_join import Mp4JoinUnsupported, join_mp4
from multitalk.media.scene_audio import AUDIO_CODEC, join_scene_audio, scene_audio_input

MP4 = {"movflags": "+faststart", "f": "mp4"}
SUBTITLES = {"c:s": "mov_text", "metadata:s:s:0": "language=eng"}
logger = logging.getLogger(__name__)


def assemble_scene_clip(segments: list[Path], audio: Path, out: Path, *, packets: bool) -> None:
    """A scene's chunk segments one after another with its audio: its AAC packets, or its mix encoded.

    With packets, ffmpeg puts them in an MP4 of their own and the segments are joined beside it (`mp4_join`);
    otherwise, or for segments laid out otherwise, ffmpeg stream-copies the segments.
    """
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        if packets:
            track = Path(work) / "audio.mp4"
            run(ffmpeg.output(scene_audio_input(audio)["a:0"], str(track), **{"c:a": "copy"}, **BITEXACT, f="mp4"))
            try:
                join_mp4(segments, out, beside=[track])
                return
            except Mp4JoinUnsupported as reason:
                logger.info("%s: stream-copied by ffmpeg, not joined: %s", out.name, reason)
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
    """The final MP4: the scene clips joined with their packets (or, off the packet grid, their videos
    stream-copied with the mixes joined sample-exactly and encoded once); soft subtitles."""
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        if scene_packets is not None:
            beside = []
            if subtitles_srt is not None:
                beside.append(Path(work) / "subtitles.mp4")
                srt = ffmpeg.input(str(subtitles_srt))["s:0"]
                run(ffmpeg.output(srt, str(beside[0]), **SUBTITLES, **BITEXACT, f="mp4"))
            try:
                join_mp4(scene_clips, out, beside=beside)
                return
            except Mp4JoinUnsupported as reason:  # clips ffmpeg did not lay out as it does ours
                logger.info("%s: stream-copied by ffmpeg, not joined: %s", out.name, reason)
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
            options.update(SUBTITLES)
        run(ffmpeg.output(*streams, str(out), **options, **BITEXACT, **MP4))
