"""Scenes' audio is encoded once and joined by stream copy: sample-exact lengths, the same sound, no re-encode."""

from __future__ import annotations

import subprocess
from pathlib import Path

import ffmpeg
import numpy as np
import pytest

from multitalk.audio.audio_io import decode_audio, write_wav
from multitalk.media.assemble import assemble_scene_clip, stitch_final
from multitalk.media.ffmpeg import command, run
from multitalk.media.probe import video_facts
from multitalk.media.scene_audio import (
    BackgroundEncode,
    SceneAudioError,
    adts_packets,
    encode_scene_audio,
    whole_packets,
)
from multitalk.timing import DELIVERY_SAMPLE_RATE, FPS, SCENE_FRAME_MULTIPLE

RATE = DELIVERY_SAMPLE_RATE
PER_FRAME = RATE // FPS


def scene_mix(frames: int, pitch: float) -> np.ndarray:
    """Speech-like sound between the default 0.2 s lead-in and 0.6 s tail of silence."""
    samples = np.zeros(frames * PER_FRAME, np.float32)
    start, end = int(0.2 * RATE), samples.size - int(0.6 * RATE)
    t = np.arange(end - start) / RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    noise = np.random.default_rng(int(pitch)).standard_normal(t.size)
    samples[start:end] = 0.3 * envelope * np.sin(2 * np.pi * pitch * t) + 0.02 * noise
    return samples


def segment(path: Path, frames: int) -> Path:
    source = ffmpeg.input(f"testsrc=size=64x64:rate={FPS}", f="lavfi")
    run(ffmpeg.output(source, str(path), vframes=frames, vcodec="libx264", pix_fmt="yuv420p", f="mp4"))
    return path


def snr_db(decoded: np.ndarray, truth: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(truth**2) / np.sum((decoded - truth) ** 2)))


def test_scene_clips_and_final_join_the_scenes_packets_sample_exactly(tmp_path: Path) -> None:
    frames = [5 * SCENE_FRAME_MULTIPLE, 9 * SCENE_FRAME_MULTIPLE]
    mixes = [scene_mix(count, pitch) for count, pitch in zip(frames, (220.0, 330.0), strict=True)]
    clips, pieces, wavs = [], [], []
    for index, (count, mix) in enumerate(zip(frames, mixes, strict=True)):
        wav = write_wav(tmp_path / f"mix{index}.wav", mix, RATE)
        wavs.append(wav)
        piece = tmp_path / f"scene{index}.aac"
        encode_scene_audio(wav, piece)
        assert len(adts_packets(piece.read_bytes())) == 1 + mix.size // 1024  # a warm-up packet, then the scene
        halves = [segment(tmp_path / f"s{index}-{half}.mp4", count // 2) for half in (0, 1)]
        clip = tmp_path / f"scene{index}.mp4"
        assemble_scene_clip(halves, piece, clip, packets=True)
        heard = decode_audio(clip, RATE)
        assert heard.size == mix.size, "a scene clip holds exactly its mix's samples"
        assert snr_db(heard, mix) > 20
        clips.append(clip)
        pieces.append(piece)

    final = tmp_path / "final.mp4"
    stitch_final(clips, pieces, wavs, None, final)
    facts = video_facts(final)
    assert facts.frames == sum(frames)
    assert facts.audio_seconds == pytest.approx(sum(frames) / FPS, abs=1e-6)
    heard = decode_audio(final, RATE)
    truth = np.concatenate(mixes)
    assert heard.size == truth.size, "the joined audio is sample-exact: no gap, no padding at the scene join"
    assert snr_db(heard, truth) > 20
    join = mixes[0].size
    clip_audio = np.concatenate([decode_audio(clip, RATE) for clip in clips])
    assert np.max(np.abs(heard[join - 4096 : join + 4096] - clip_audio[join - 4096 : join + 4096])) < 1e-4

    # No re-encode: the final's audio packets are the scenes' packets, byte for byte.
    copied = tmp_path / "copied.aac"
    graph = ffmpeg.input(str(final))["a:0"].output(str(copied), f="adts", **{"c:a": "copy"})
    subprocess.run(command(graph), check=True, capture_output=True)
    scene_packets = adts_packets(pieces[0].read_bytes()) + adts_packets(pieces[1].read_bytes())[1:]
    final_packets = adts_packets(copied.read_bytes())
    assert [packet[7:] for packet in final_packets] == [packet[7:] for packet in scene_packets]  # past the header


def test_audio_that_is_not_whole_packets_is_refused_by_name(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "odd.wav", np.zeros(7 * PER_FRAME, np.float32), RATE)
    with pytest.raises(SceneAudioError, match=r"odd\.wav: 13440 samples at 48000 Hz is not a whole number"):
        encode_scene_audio(wav, tmp_path / "odd.aac")


def test_scenes_off_the_packet_grid_join_their_mixes_sample_exactly(tmp_path: Path) -> None:
    """`tail: 0` scenes (e.g. imported official jobs) end with their audio: 53 and 61 frames, encoded once.

    (Off the grid, AAC's last packet is padded: an MP4 player hears up to 1023 samples of silence more.)
    """
    frames = [53, 61]
    mixes = [scene_mix(count, pitch) for count, pitch in zip(frames, (220.0, 330.0), strict=True)]
    wavs = [write_wav(tmp_path / f"mix{i}.wav", mix, RATE) for i, mix in enumerate(mixes)]
    assert not any(whole_packets(wav) for wav in wavs)
    clips = []
    for index, (count, wav) in enumerate(zip(frames, wavs, strict=True)):
        clip = tmp_path / f"scene{index}.mp4"
        assemble_scene_clip([segment(tmp_path / f"s{index}.mp4", count)], wav, clip, packets=False)
        assert 0 <= decode_audio(clip, RATE).size - count * PER_FRAME < 1024  # AAC pads its last packet
        clips.append(clip)
    final = tmp_path / "final.mp4"
    stitch_final(clips, None, wavs, None, final)
    assert video_facts(final).frames == sum(frames)
    heard = decode_audio(final, RATE)
    truth = np.concatenate(mixes)
    assert 0 <= heard.size - truth.size < 1024, "one encode of the joined mixes: no gap at the join"
    assert snr_db(heard[: truth.size], truth) > 20


def test_packets_encoded_in_the_background_are_the_packets_encoded_in_place(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "mix.wav", scene_mix(4 * SCENE_FRAME_MULTIPLE, 220.0), RATE)
    encode_scene_audio(wav, tmp_path / "in-place.aac")
    background = BackgroundEncode(wav, tmp_path / "work")
    taken = background.take()
    assert taken is not None and taken.read_bytes() == (tmp_path / "in-place.aac").read_bytes()
    assert background.take() is None, "handed over once: a retried clip encodes again itself"
    background.discard()
    assert list((tmp_path / "work").iterdir()) == []


def test_a_failed_background_encode_raises_when_taken(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "odd.wav", np.zeros(1000, np.float32), RATE)  # not whole packets
    background = BackgroundEncode(wav, tmp_path / "work")
    with pytest.raises(SceneAudioError, match="not a whole number of 1024-sample packets"):
        background.take()
    background.discard()
    assert list((tmp_path / "work").iterdir()) == []
