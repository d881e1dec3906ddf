"""Deliverables: `<outputs>/<name>/` with the final video, subtitles, scene clips, timeline picture, manifest.

Each screenplay owns one folder. It is named after the file (`outputs/two_friends/`), and the first screenplay to
use a name claims it (`.screenplay` inside holds the screenplay's absolute path); another screenplay with the same
file name from another folder (`a/episode.yaml`, `b/episode.yaml`) gets `<name>-<8 hex of its path>/`. So two
screenplays never share an outputs folder or a manifest, and `cache gc` sees every render's keys.

Files are linked (or copied) from the store and renamed into place, so a reader never sees half a file and the
store stays the one place where results are computed. The manifest lists every store key the render used, by
stage: `multitalk cache gc` keeps exactly what the latest manifests reference.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from multitalk.audio.timeline_plot import timeline_png
from multitalk.quality.report import gates_report
from multitalk.screenplay.output_names import inside
from multitalk.screenplay.schema import Screenplay
from multitalk.stages.align import AlignedScene
from multitalk.stages.clip import SceneClip
from multitalk.stages.final import FINAL_FILE, FinalVideo
from multitalk.stages.plan import SceneResult
from multitalk.stages.settings import RenderSettings
from multitalk.stages.stage import Stage
from multitalk.store.store import write_bytes_atomic, write_json_atomic

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 2  # 2: stage names voice/align in "keys", unique output folders
OWNER_FILE = ".screenplay"


def link_or_copy(source: Path, target: Path) -> None:
    """Place `source` at `target` atomically (hard link when on the same disk, else a copy)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        os.link(source, temp)
    except OSError:
        shutil.copyfile(source, temp)
    os.replace(temp, target)


def _owner(folder: Path) -> str | None:
    """The screenplay that claimed `folder` (its `.screenplay`, else an older manifest's `screenplay`)."""
    with contextlib.suppress(OSError):
        return (folder / OWNER_FILE).read_text(encoding="utf-8").strip()
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        import json

        return str(json.loads((folder / MANIFEST).read_text())["screenplay"])
    return None


def output_dir(screenplay: Screenplay, outputs_root: Path, *, claim: bool = False) -> Path:
    """This screenplay's own folder under `outputs_root` (claimed for it when `claim`)."""
    source = str(screenplay.source_file.resolve())
    suffix = hashlib.sha256(source.encode("utf-8")).hexdigest()[:8]
    for name in (screenplay.slug, f"{screenplay.slug}-{suffix}"):
        folder = inside(outputs_root, name)  # slugs are path-safe already; this keeps it so
        owner = _owner(folder)
        if owner == source:
            return folder
        if owner is None:
            if claim:
                folder.mkdir(parents=True, exist_ok=True)
                write_bytes_atomic(folder / OWNER_FILE, (source + "\n").encode("utf-8"))
            return folder
    raise RuntimeError(f"{outputs_root}: both {screenplay.slug}/ and {screenplay.slug}-{suffix}/ belong to others")


def referenced_keys(scenes: Mapping[str, SceneResult], final_video: FinalVideo | None) -> dict[str, list[str]]:
    """Store keys by stage that this render depends on (what `cache gc` must keep)."""
    keys: dict[str, set[str]] = {stage.value: set() for stage in Stage}
    for scene in scenes.values():
        keys[Stage.VOICE].update(scene.voice_keys)
        keys[Stage.ALIGN].add(scene.align_key)
        keys[Stage.CHUNK].update(scene.chunk_keys)
        keys[Stage.CLIP].add(scene.clip_key)
    if final_video is not None:
        keys[Stage.FINAL].add(final_video.key)
    return {stage: sorted(values) for stage, values in keys.items()}


def publish_outputs(
    screenplay: Screenplay,
    settings: RenderSettings,
    scenes: Mapping[str, SceneResult],
    clips: Mapping[str, SceneClip],
    aligned: Mapping[str, AlignedScene],
    final_video: FinalVideo | None,
    *,
    wall_seconds: float,
    timeline_picture: bytes | None = None,
) -> dict[str, Any]:
    """Link the deliverables out of the store and write the manifest; returns the manifest.

    `timeline_picture`: the timeline PNG of these scenes if the caller drew it already (`timeline_png`).
    """
    out = output_dir(screenplay, settings.store_root, claim=True)
    for scene_id in scenes:
        if scene_id in clips:
            link_or_copy(clips[scene_id].video, out / "scenes" / f"{scene_id}.mp4")
        if scene_id in aligned:
            for suffix, path in aligned[scene_id].subtitles.items():
                link_or_copy(path, out / "scenes" / f"{scene_id}{suffix}")
    timelines = {scene_id: aligned[scene_id].timeline() for scene_id in scenes if scene_id in aligned}
    if timelines:
        write_bytes_atomic(out / "timeline.png", timeline_picture or timeline_png(screenplay, timelines))
    final_files = {}
    if final_video is not None:
        for name, path in final_video.files.items():
            link_or_copy(path, out / name)
            final_files[name] = str(out / name)
    rows = [scenes[scene.id] for scene in screenplay.scenes if scene.id in scenes]
    manifest = {
        "format": MANIFEST_FORMAT,
        "title": screenplay.title,
        "screenplay": str(screenplay.source_file.resolve()),
        "rendered_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "renderer": settings.renderer,
        "devices": list(settings.devices),
        "store": str(settings.store_root),
        "output_dir": str(out),
        "final": {
            "key": final_video.key,
            "frames": final_video.frames,
            "seconds": final_video.seconds,
            "files": final_files,
        }
        if final_video is not None
        else None,
        "video": str(out / FINAL_FILE) if final_video is not None else None,
        "timeline_png": str(out / "timeline.png") if timelines else None,
        "scenes": [row.to_json() for row in rows],
        "totals": {
            "scenes": len(rows),
            "frames": sum(s.frames for s in rows),
            "seconds": sum(s.seconds for s in rows),
            "chunks": sum(s.chunks for s in rows),
            "chunks_rendered": sum(s.chunks_rendered for s in rows),
            "chunks_cached": sum(s.chunks_cached for s in rows),
            "lines_voiced": sum(s.voiced for s in rows),
            "lines_cached": sum(s.voices_cached for s in rows),
            "wall_seconds": round(wall_seconds, 3),
        },
        "keys": referenced_keys(scenes, final_video),
        # Quality gates: per chunk scores and attempts, re-rolled and failing chunks (multitalk/quality/report.py).
        "gates": gates_report(settings.store, [(row.scene_id, row.chunk_keys) for row in rows]),
    }
    with contextlib.suppress(FileNotFoundError):
        previous = (out / MANIFEST).read_bytes()
        write_bytes_atomic(out / f"{MANIFEST}.previous", previous)
    write_json_atomic(out / MANIFEST, manifest)
    return manifest
