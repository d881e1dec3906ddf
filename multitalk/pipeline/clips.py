"""Scene clips and the final video, as store entries.

A scene clip is its chunk segments concatenated (stream copy) with the scene's 48 kHz mix; the final is the
scene clips concatenated with the mixes joined sample-exactly, plus subtitles. Both are verified frame-exact with
ffprobe before they are committed: a clip that does not hold exactly the scene's frames never enters the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from multitalk.media.assemble import assemble_scene_clip, stitch_final
from multitalk.media.probe import video_facts
from multitalk.store.keys import content_key
from multitalk.store.store import Entry, Store

CLIP_STAGE, CLIP_VERSION, CLIP_FILE = "clip", "1", "scene.mp4"
FINAL_STAGE, FINAL_VERSION, FINAL_FILE = "final", "1", "final.mp4"
FRAME_SECONDS = 1 / 25


class AssemblyError(RuntimeError):
    """An assembled video is not what the plan says (frame count or audio length)."""


def clip_key(chunk_keys: list[str], audio_key: str) -> str:
    return content_key(CLIP_STAGE, CLIP_VERSION, {"chunks": chunk_keys, "audio": audio_key})


def verify_frames(path: Path, frames: int, fps: int = 25) -> dict[str, Any]:
    """ffprobe the file: exactly `frames` video frames, audio as long as the video to within one frame."""
    facts = video_facts(path)
    if facts.frames != frames:
        raise AssemblyError(f"{path.name}: {facts.frames} video frames, expected {frames}")
    if facts.audio_seconds is not None and abs(facts.audio_seconds - frames / fps) > 1 / fps:
        raise AssemblyError(f"{path.name}: audio lasts {facts.audio_seconds:.3f}s, video {frames / fps:.3f}s")
    return {
        "frames": facts.frames,
        "seconds": frames / fps,
        "audio_seconds": facts.audio_seconds,
        "size": [facts.width, facts.height],
    }


def build_scene_clip(store: Store, key: str, scene_id: str, segments: list[Path], mix_wav: Path, frames: int) -> Entry:
    with store.writing(CLIP_STAGE, key) as temp:
        out = temp / CLIP_FILE
        assemble_scene_clip(segments, mix_wav, out)
        facts = verify_frames(out, frames)
        return store.commit(CLIP_STAGE, key, temp, {"scene_id": scene_id, **facts})


def final_key(clip_keys: list[str], audio_keys: list[str], subtitles: str) -> str:
    return content_key(FINAL_STAGE, FINAL_VERSION, {"clips": clip_keys, "audio": audio_keys, "subtitles": subtitles})


def build_final(
    store: Store,
    key: str,
    clips: list[Path],
    mixes: list[Path],
    subtitle_files: dict[str, str],
    frames: int,
) -> Entry:
    """The final MP4 with soft subtitles, and the subtitle files beside it (`final.srt`, `final.vtt`)."""
    with store.writing(FINAL_STAGE, key) as temp:
        for name, text in subtitle_files.items():
            (temp / name).write_text(text, encoding="utf-8")
        srt = temp / "final.srt" if "final.srt" in subtitle_files else None
        stitch_final(clips, mixes, srt, temp / FINAL_FILE)
        facts = verify_frames(temp / FINAL_FILE, frames)
        return store.commit(FINAL_STAGE, key, temp, facts)
