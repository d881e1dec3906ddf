"""Conditioning tracks and the delivery mix from real espeak-ng lines: lengths, overlaps, loudness, edit locality."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from PIL import Image
from scipy.signal import resample_poly

from multitalk.audio.align import build_timeline
from multitalk.audio.audio_io import read_wav
from multitalk.audio.line_audio import synthesise_line
from multitalk.audio.loudness import integrated_loudness, true_peak_db
from multitalk.audio.tracks import build_mix, build_tracks, read_line_wavs, write_scene_audio
from multitalk.screenplay import load_screenplay
from multitalk.screenplay.schema import Mix
from multitalk.timing import SAMPLES_PER_FRAME

PLAY = """
title: tracks
characters:
  alice: {voice: en-us+f3, pitch: 60}
  bob: {voice: en-us+m3, pitch: 35}
  narrator: {voice: en-gb, speed: 0.9}
scenes:
  - id: talk
    image: scene.png
    cast: {alice: left, bob: right}
    lines:
      - alice: "Good morning! Did you sleep at all last night, with the storm rattling the windows?"
      - bob: "Oh!"
      - alice: "I kept thinking the roof would come off, honestly, and then the power went out"
      - bob: "Sorry, I have to stop you there."
        overlap: 0.9
      - narrator: "Outside, the wind had finally dropped."
      - bob: "Let's go and look at the garden before breakfast."
        pause: 0.8
"""


def _build(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), "gray").save(folder / "scene.png")
    (folder / "play.yaml").write_text(textwrap.dedent(text))
    screenplay = load_screenplay(folder / "play.yaml")
    scene = screenplay.scenes[0]
    wavs = [folder / f"line{i}.wav" for i in range(len(scene.lines))]
    infos = [synthesise_line(screenplay, line, wav) for line, wav in zip(scene.lines, wavs, strict=True)]
    timeline = build_timeline(scene, [info.duration for info in infos], screenplay.defaults.timing)
    return screenplay, timeline, wavs


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tracks")
    screenplay, timeline, wavs = _build(folder, PLAY)
    written = write_scene_audio(timeline, wavs, folder / "out", screenplay.defaults.mix)
    tracks = {speaker: read_wav(path) for speaker, path in written.tracks}
    mix = read_wav(written.mix)
    return {"folder": folder, "timeline": timeline, "wavs": wavs, "written": written, "tracks": tracks, "mix": mix}


def _loud(samples: np.ndarray) -> bool:
    return bool(np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 10 ** (-50 / 20))


def test_tracks_are_exactly_frames_times_640_and_equal(scene):
    timeline = scene["timeline"]
    assert [speaker for speaker, _ in scene["written"].tracks] == ["alice", "bob"]  # person 1, person 2
    for samples, rate in scene["tracks"].values():
        assert rate == 16_000 and samples.dtype == np.float32
        assert samples.size == timeline.frames * SAMPLES_PER_FRAME
    mix, rate = scene["mix"]
    assert rate == 48_000 and mix.size == timeline.frames * 1920


def test_an_overlap_puts_speech_in_both_tracks_at_once(scene):
    timeline = scene["timeline"]
    interrupted, interrupting = timeline.lines[2], timeline.lines[3]
    assert interrupting.start_frame < interrupted.end_frame
    window = slice(interrupting.start_frame * 640, (interrupted.end_frame - 2) * 640)
    alice, bob = scene["tracks"]["alice"][0], scene["tracks"]["bob"][0]
    assert _loud(alice[window]) and _loud(bob[window])


def test_tracks_are_silent_where_their_person_does_not_speak(scene):
    timeline = scene["timeline"]
    alice, bob = scene["tracks"]["alice"][0], scene["tracks"]["bob"][0]
    first = timeline.lines[0]
    assert not alice[: first.start_frame * 640].any() and not bob[: first.start_frame * 640].any()
    assert not bob[first.start_frame * 640 : first.end_frame * 640].any()  # alice talks alone
    voice_over = timeline.lines[4]
    assert not voice_over.on_screen
    span = slice(voice_over.start_frame * 640, voice_over.end_frame * 640)
    assert not alice[span].any() and not bob[span].any()  # the narrator is in no track...
    mix = scene["mix"][0]
    assert _loud(mix[voice_over.start_frame * 1920 : voice_over.end_frame * 1920])  # ...but in the mix


def test_track_loudness_is_minus_23_lufs(scene):
    for samples, rate in scene["tracks"].values():
        assert integrated_loudness(samples, rate) == pytest.approx(-23.0, abs=0.5)


def test_mix_meets_loudness_and_true_peak(scene):
    mix, rate = scene["mix"]
    assert integrated_loudness(mix, rate) == pytest.approx(-16.0, abs=0.5)
    assert true_peak_db(mix, rate) <= -1.0 + 1e-6
    # an independent true-peak measure: 8x polyphase oversampling
    assert 20 * np.log10(np.abs(resample_poly(mix.astype(np.float64), 8, 1)).max()) <= -1.0 + 0.05
    assert scene["written"].mix_loudness == pytest.approx(-16.0, abs=0.1)


def test_mix_follows_the_screenplay_settings(scene):
    audio, rate = read_line_wavs(scene["wavs"])
    mastered = build_mix(scene["timeline"], audio, Mix(loudness=-20.0, true_peak=-3.0), rate)
    assert mastered.loudness == pytest.approx(-20.0, abs=0.1)
    assert integrated_loudness(mastered.samples, rate) == pytest.approx(-20.0, abs=0.5)
    assert true_peak_db(mastered.samples, rate) <= -3.0 + 1e-6


def test_editing_a_line_changes_tracks_only_from_its_start(scene):
    edited = PLAY.replace("Sorry, I have to stop you there.", "Wait, wait, wait. Listen to me for one second.")
    _, timeline, wavs = _build(scene["folder"] / "edited", edited)
    before = build_tracks(scene["timeline"], read_line_wavs(scene["wavs"])[0])
    after = build_tracks(timeline, read_line_wavs(wavs)[0])
    cut = timeline.lines[3].start_frame * SAMPLES_PER_FRAME
    assert timeline.lines[3].start_frame == scene["timeline"].lines[3].start_frame
    for speaker in ("alice", "bob"):
        assert np.array_equal(before[speaker][:cut], after[speaker][:cut])
    assert not np.array_equal(before["bob"][cut:], after["bob"][cut : cut + before["bob"].size - cut])


def test_outputs_are_written_atomically_with_a_manifest(scene):
    out = scene["folder"] / "out"
    assert sorted(p.name for p in out.iterdir()) == ["mix.wav", "scene_audio.json", "track1.wav", "track2.wav"]
    manifest = scene["written"].to_json()
    assert manifest["tracks"] == [{"speaker": "alice", "file": "track1.wav"}, {"speaker": "bob", "file": "track2.wav"}]
