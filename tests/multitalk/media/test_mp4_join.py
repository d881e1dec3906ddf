"""Clips joined through their sample tables hold ffmpeg's packets, start together, and refuse what they cannot join."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import ffmpeg
import numpy as np
import pytest

from multitalk.audio.audio_io import decode_audio, write_wav
from multitalk.media import mp4_join
from multitalk.media.assemble import assemble_scene_clip, stitch_final
from multitalk.media.ffmpeg import command, run
from multitalk.media.mp4_join import Mp4JoinUnsupported, join_mp4
from multitalk.media.probe import probe
from multitalk.media.scene_audio import encode_scene_audio
from multitalk.timing import DELIVERY_SAMPLE_RATE, FPS, SCENE_FRAME_MULTIPLE

SRT = "1\n00:00:00,200 --> 00:00:01,500\nHello there.\n\n2\n00:00:02,000 --> 00:00:03,100\nAnd you.\n"


def scene_clip(folder: Path, name: str, frames: int, pitch: float, size: str = "64x64") -> Path:
    """A scene clip as the clip stage makes it: two x264 segments (B-frames) and the scene's AAC packets."""
    segments = []
    for half in (0, 1):
        source = ffmpeg.input(f"testsrc=size={size}:rate={FPS}", f="lavfi")
        path = folder / f"{name}-{half}.mp4"
        run(ffmpeg.output(source, str(path), vframes=frames // 2, vcodec="libx264", pix_fmt="yuv420p", f="mp4"))
        segments.append(path)
    t = np.arange(frames * DELIVERY_SAMPLE_RATE // FPS) / DELIVERY_SAMPLE_RATE
    wav = write_wav(folder / f"{name}.wav", (0.3 * np.sin(2 * np.pi * pitch * t)).astype(np.float32), 48000)
    encode_scene_audio(wav, folder / f"{name}.aac")
    clip = folder / f"{name}.mp4"
    assemble_scene_clip(segments, folder / f"{name}.aac", clip, packets=True)
    return clip


def subtitle_track(folder: Path) -> Path:
    (folder / "subs.srt").write_text(SRT, encoding="utf-8")
    out = folder / "subs.mp4"
    run(ffmpeg.output(ffmpeg.input(str(folder / "subs.srt"))["s:0"], str(out), **{"c:s": "mov_text"}, f="mp4"))
    return out


def packets(path: Path) -> dict[int, list[tuple[int, int, int, int, str]]]:
    """Every packet by stream: (dts, pts, duration, size, md5), as ffmpeg reads them back."""
    graph = ffmpeg.input(str(path)).output("-", map="0", c="copy", f="framemd5")
    listing = subprocess.run(command(graph), capture_output=True, text=True, check=True).stdout
    streams: dict[int, list[tuple[int, int, int, int, str]]] = {}
    for line in listing.splitlines():
        if line.startswith("#"):
            continue
        stream, dts, pts, duration, size, digest = (field.strip() for field in line.split(",")[:6])
        streams.setdefault(int(stream), []).append((int(dts), int(pts), int(duration), int(size), digest))
    return streams


def decoded_frames(path: Path) -> list[str]:
    """The md5 of every decoded video frame: what a player shows."""
    graph = ffmpeg.input(str(path)).output("-", map="0:v:0", f="framemd5")
    listing = subprocess.run(command(graph), capture_output=True, text=True, check=True).stdout
    return [line.split(",")[-1].strip() for line in listing.splitlines() if not line.startswith("#")]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    return [
        scene_clip(folder, "a", 4 * SCENE_FRAME_MULTIPLE, 220.0),
        scene_clip(folder, "b", 6 * SCENE_FRAME_MULTIPLE, 330.0),
    ]


def test_joined_clips_hold_their_packets_in_order_and_every_stream_starts_at_zero(
    clips: list[Path], tmp_path: Path
) -> None:
    subtitles = subtitle_track(tmp_path)
    joined = tmp_path / "joined.mp4"
    join_mp4(clips, joined, beside=[subtitles])

    ours, each = packets(joined), [packets(clip) for clip in clips]
    assert sorted(ours) == [0, 1, 2]
    first_length = sum(packet[2] for packet in each[0][0])
    later = [(dts + first_length, pts + first_length, *rest) for dts, pts, *rest in each[1][0]]
    assert ours[0] == each[0][0] + later, "every clip's video packets, in order, on one clock"
    # Audio: the first clip's warm-up packet, then every clip's own packets (the later warm-ups left out).
    assert [p[3:] for p in ours[1]] == [p[3:] for p in each[0][1] + each[1][1][1:]]
    assert ours[2] == packets(subtitles)[0], "the subtitle track as ffmpeg muxed it"
    assert decoded_frames(joined) == decoded_frames(clips[0]) + decoded_frames(clips[1])

    streams = {s["codec_type"]: s for s in probe(joined)["streams"]}
    frames = 10 * SCENE_FRAME_MULTIPLE
    assert int(streams["video"]["nb_frames"]) == frames
    for kind in ("video", "audio"):
        assert float(streams[kind]["start_time"]) == 0.0, f"{kind} starts with the film"
        assert float(streams[kind]["duration"]) == pytest.approx(frames / FPS, abs=1e-6)
    heard = decode_audio(joined, DELIVERY_SAMPLE_RATE)
    assert heard.size == frames * DELIVERY_SAMPLE_RATE // FPS, "sample-exact: no warm-up heard at the join"


def test_one_clip_joined_keeps_its_sample_tables_and_bit_rates(clips: list[Path], tmp_path: Path) -> None:
    joined = tmp_path / "one.mp4"
    join_mp4(clips[:1], joined)

    def tables(path: Path) -> list[dict[bytes, bytes]]:
        data = path.read_bytes()
        moov = next(box for box in mp4_join._boxes(data) if box.kind == b"moov")
        found = []
        for trak in (box for box in mp4_join._boxes(data, moov.body, moov.end) if box.kind == b"trak"):
            mdia = next(box for box in mp4_join._boxes(data, trak.body, trak.end) if box.kind == b"mdia")
            minf = next(box for box in mp4_join._boxes(data, mdia.body, mdia.end) if box.kind == b"minf")
            stbl = next(box for box in mp4_join._boxes(data, minf.body, minf.end) if box.kind == b"stbl")
            found.append({box.kind: data[box.start : box.end] for box in mp4_join._boxes(data, stbl.body, stbl.end)})
        return found

    ours, theirs = tables(joined), tables(clips[0])
    for kept, original in zip(ours, theirs, strict=True):
        assert kept.keys() == original.keys()
        for kind in kept.keys() - {b"stco"}:
            assert kept[kind] == original[kind], f"{kind.decode()} differs"  # stsd: ffmpeg's bit rates, recomputed
    assert packets(joined) == packets(clips[0])


def test_a_join_past_four_gigabytes_uses_64_bit_offsets_and_headers(
    clips: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a film over 4 GiB (or over 2^32 ticks) needs: co64, a 64-bit mdat size, version-1 headers and edits."""
    small, large = tmp_path / "small.mp4", tmp_path / "large.mp4"
    join_mp4(clips, small)
    monkeypatch.setattr(mp4_join, "U32", 1000)  # every size and duration counts as large
    join_mp4(clips, large)
    data = large.read_bytes()
    assert b"co64" in data and b"stco" not in data
    mdat = next(box for box in mp4_join._boxes(data) if box.kind == b"mdat")
    assert mdat.body - mdat.start == 16, "the mdat box has a 64-bit size"
    assert packets(large) == packets(small)


def test_the_copy_falls_back_to_reading_where_the_kernel_cannot_copy(
    clips: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel, read = tmp_path / "kernel.mp4", tmp_path / "read.mp4"
    join_mp4(clips, kernel)

    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "copy_file_range", refuse)
    join_mp4(clips, read)
    assert read.read_bytes() == kernel.read_bytes()


def test_clips_described_unlike_each_other_are_refused_and_stitched_by_ffmpeg(
    clips: list[Path], tmp_path: Path
) -> None:
    wider = scene_clip(tmp_path, "wide", 2 * SCENE_FRAME_MULTIPLE, 440.0, size="96x64")
    with pytest.raises(Mp4JoinUnsupported, match=r"wide\.mp4: its vide track is described unlike the first's"):
        join_mp4([clips[0], wider], tmp_path / "refused.mp4")
    assert not (tmp_path / "refused.mp4").exists(), "nothing is written when the join is refused"

    final = tmp_path / "final.mp4"
    scenes = [clips[0], wider]
    stitch_final(scenes, [c.with_suffix(".aac") for c in scenes], [c.with_suffix(".wav") for c in scenes], None, final)
    video = next(s for s in probe(final, count_packets=None)["streams"] if s["codec_type"] == "video")
    assert int(video["nb_read_packets"]) == 6 * SCENE_FRAME_MULTIPLE


def test_a_file_that_is_not_an_mp4_is_refused_by_name(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_bytes(b"\0\0\0\x10ftypisom\0\0\0\0")  # a file type box, and no movie
    with pytest.raises(Mp4JoinUnsupported, match=r"notes\.mp4: not one ftyp, one moov and one mdat"):
        join_mp4([text], tmp_path / "out.mp4")
