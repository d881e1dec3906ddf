"""Task: the final video from the scene clips, with subtitles."""

from __future__ import annotations

from prefect import task

from multitalk.audio.subtitles import screenplay_cues, to_srt, to_vtt
from multitalk.pipeline.clips import CLIP_FILE, CLIP_STAGE, FINAL_STAGE, build_final
from multitalk.pipeline.voices import AUDIO_STAGE, MIX_FILE, timeline_of
from multitalk.screenplay.schema import Screenplay
from multitalk.store.store import Store


def subtitle_files(screenplay: Screenplay, store: Store, audio_keys: list[str], scene_ids: list[str]) -> dict:
    """`final.srt` / `final.vtt` text for these scenes, timed across the whole video."""
    timelines = {}
    for scene_id, audio_key in zip(scene_ids, audio_keys, strict=True):
        entry = store.get(AUDIO_STAGE, audio_key)
        if entry is None:
            raise RuntimeError(f"scene {scene_id!r}: its audio {audio_key} is missing from the store; re-run")
        timelines[scene_id] = timeline_of(entry)
    cues = screenplay_cues(screenplay, timelines)
    return {"final.srt": to_srt(cues), "final.vtt": to_vtt(cues)} if cues else {}


@task(name="stitch", retries=1)
def stitch(
    key: str,
    store_root: str,
    clip_keys: list[str],
    audio_keys: list[str],
    subtitles: dict[str, str],
    frames: int,
) -> dict:
    store = Store(store_root)
    existing = store.get(FINAL_STAGE, key)
    if existing is None:
        clips, mixes = [], []
        for clip_key, audio_key in zip(clip_keys, audio_keys, strict=True):
            clip, audio = store.get(CLIP_STAGE, clip_key), store.get(AUDIO_STAGE, audio_key)
            if clip is None or audio is None:
                raise RuntimeError(f"a scene clip or mix ({clip_key}, {audio_key}) is missing from the store; re-run")
            clips.append(clip.file(CLIP_FILE))
            mixes.append(audio.file(MIX_FILE))
        existing = build_final(store, key, clips, mixes, subtitles, frames)
    return {"key": key, **existing.result}
