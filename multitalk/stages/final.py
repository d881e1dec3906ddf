"""Stage `final`: the scene clips joined (their bytes copied), their audio joined sample-exactly, soft subtitles.

Its key is the clip keys, the align keys and the subtitle text; the subtitle files sit beside the video.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from multitalk.audio.subtitles import screenplay_cues, to_srt, to_vtt
from multitalk.media.assemble import stitch_final
from multitalk.screenplay.schema import Screenplay
from multitalk.stages.align import AlignedScene
from multitalk.stages.clip import SceneClip, verify_frames
from multitalk.stages.stage import Stage
from multitalk.store.keys import content_key
from multitalk.store.store import Entry, Store

STAGE = Stage.FINAL
VERSION = "4"  # 2: audio joined from the scenes' packets where they have them; 3: the fast AAC coder; 4: clips
# joined through their sample tables (the video no longer starts 21 ms after the audio)
FINAL_FILE, SRT_FILE, VTT_FILE = "final.mp4", "final.srt", "final.vtt"


@dataclass(frozen=True)
class FinalVideo:
    """The stitched screenplay in the store."""

    key: str
    frames: int
    seconds: float
    video: Path
    files: dict[str, Path]  # every file of the entry by name (final.mp4, final.srt, final.vtt)

    @classmethod
    def of(cls, entry: Entry) -> FinalVideo:
        files = {name: entry.file(name) for name in entry.files}
        return cls(entry.key, int(entry.result["frames"]), float(entry.result["seconds"]), files[FINAL_FILE], files)


def subtitles(screenplay: Screenplay, aligned: Mapping[str, AlignedScene]) -> dict[str, str]:
    """`final.srt` / `final.vtt` text for these scenes (scene id -> aligned), timed across the whole video."""
    cues = screenplay_cues(screenplay, {scene_id: scene.timeline() for scene_id, scene in aligned.items()})
    return {SRT_FILE: to_srt(cues), VTT_FILE: to_vtt(cues)} if cues else {}


def key(clip_keys: Sequence[str], align_keys: Sequence[str], subtitle_files: Mapping[str, str]) -> str:
    material = {"clips": list(clip_keys), "audio": list(align_keys), "subtitles": subtitle_files.get(SRT_FILE, "")}
    return content_key(STAGE, VERSION, material)


def load(store: Store, key: str) -> FinalVideo | None:
    entry = store.get(STAGE, key)
    return FinalVideo.of(entry) if entry is not None else None


def build(
    store: Store,
    key: str,
    clips: Sequence[SceneClip],
    aligned: Sequence[AlignedScene],
    subtitle_files: Mapping[str, str],
) -> FinalVideo:
    """The final MP4 with soft subtitles, and the subtitle files beside it."""
    with store.writing(STAGE, key) as temp:
        for name, text in subtitle_files.items():
            (temp / name).write_text(text, encoding="utf-8")
        srt = temp / SRT_FILE if SRT_FILE in subtitle_files else None
        packets = [clip.audio for clip in clips]
        joinable = None if any(audio is None for audio in packets) else packets  # else the mixes, encoded once
        stitch_final([clip.video for clip in clips], joinable, [scene.mix for scene in aligned], srt, temp / FINAL_FILE)
        facts = verify_frames(temp / FINAL_FILE, sum(clip.frames for clip in clips))
        return FinalVideo.of(store.commit(STAGE, key, temp, facts))
