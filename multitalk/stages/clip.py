"""Stage `clip`: a scene's MP4, its chunk segments joined with its mix encoded once as AAC.

A scene on the 8-frame grid keeps its AAC packets (`scene.aac`) beside the clip: the final joins them without
encoding them again (media/assemble.py).

Verified frame-exact with ffprobe before it is committed: a clip that does not hold exactly the scene's frames
never enters the store. Its key is known as soon as the chunk keys are, so a scene whose clip is in the store
needs no chunk look-ups at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multitalk.media.assemble import assemble_scene_clip
from multitalk.media.probe import video_facts
from multitalk.media.scene_audio import BackgroundEncode, encode_scene_audio, whole_packets
from multitalk.stages.align import AlignedScene
from multitalk.stages.chunk import RenderedChunk
from multitalk.stages.stage import Stage
from multitalk.store.keys import content_key
from multitalk.store.store import Entry, Store

STAGE = Stage.CLIP
VERSION = "4"  # 2: the scene's AAC packets kept for the final; 3: the fast AAC coder; 4: segments joined through
# their sample tables
CLIP_FILE, AUDIO_FILE = "scene.mp4", "scene.aac"


class AssemblyError(RuntimeError):
    """An assembled video is not what the plan says (frame count or audio length)."""


@dataclass(frozen=True)
class SceneClip:
    """A scene's clip in the store."""

    key: str
    scene_id: str
    frames: int
    seconds: float
    audio_seconds: float | None
    size: tuple[int, int]
    video: Path
    audio: Path | None  # the scene's AAC packets (ADTS) as muxed in `video`; None off the 8-frame grid

    @classmethod
    def of(cls, entry: Entry) -> SceneClip:
        result = entry.result
        return cls(
            entry.key,
            result["scene_id"],
            int(result["frames"]),
            float(result["seconds"]),
            result.get("audio_seconds"),
            tuple(result["size"]),
            entry.file(CLIP_FILE),
            entry.file(AUDIO_FILE) if AUDIO_FILE in entry.files else None,
        )


def key(chunk_keys: Sequence[str], align_key: str) -> str:
    return content_key(STAGE, VERSION, {"chunks": list(chunk_keys), "audio": align_key})


def verify_frames(path: Path, frames: int, fps: int = 25) -> dict[str, Any]:
    """ffprobe the file: exactly `frames` video frames, audio as long as the video to within one frame.

    The counts are the muxer's (the MP4 sample tables): the file was just written by ffmpeg, and its bytes are
    hashed into the entry when it is committed.
    """
    facts = video_facts(path, count=False)
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


def load(store: Store, key: str) -> SceneClip | None:
    entry = store.get(STAGE, key)
    return SceneClip.of(entry) if entry is not None else None


def start_audio(store: Store, aligned: AlignedScene) -> BackgroundEncode | None:
    """Start encoding the scene's packets now, while its chunks render, for `build` to take (None off the grid)."""
    if not whole_packets(aligned.mix):
        return None
    return BackgroundEncode(aligned.mix, store.cache_root / STAGE)


def build(
    store: Store,
    key: str,
    scene_id: str,
    chunks: Sequence[RenderedChunk],
    aligned: AlignedScene,
    audio: BackgroundEncode | None = None,
) -> SceneClip:
    """Assemble and verify the clip; `audio`: the packets `start_audio` began encoding (else encoded here)."""
    with store.writing(STAGE, key) as temp:
        out = temp / CLIP_FILE
        segments = [chunk.segment for chunk in chunks]
        if whole_packets(aligned.mix):
            encoded = audio.take() if audio is not None else None
            if encoded is not None:
                encoded.replace(temp / AUDIO_FILE)
            else:
                encode_scene_audio(aligned.mix, temp / AUDIO_FILE)
            assemble_scene_clip(segments, temp / AUDIO_FILE, out, packets=True)
        else:
            assemble_scene_clip(segments, aligned.mix, out, packets=False)
        facts = verify_frames(out, aligned.frames)
        return SceneClip.of(store.commit(STAGE, key, temp, {"scene_id": scene_id, **facts}))
