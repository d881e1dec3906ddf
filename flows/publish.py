"""Deliverables: `<outputs>/<slug>/` with the final video, subtitles, scene clips, timeline picture, manifest.

Files are linked (or copied) from the store and renamed into place, so a reader never sees half a file and
the store stays the one place where results are computed. The manifest lists every store key the render used:
`multitalk cache gc` keeps exactly what the latest manifests reference.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from flows.settings import RenderSettings
from multitalk.audio.timeline_plot import draw_timeline
from multitalk.pipeline.clips import CLIP_FILE, CLIP_STAGE, FINAL_FILE, FINAL_STAGE
from multitalk.pipeline.voices import AUDIO_STAGE, timeline_of
from multitalk.screenplay.schema import Screenplay
from multitalk.store.store import write_json_atomic

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


def link_or_copy(source: Path, target: Path) -> None:
    """Place `source` at `target` atomically (hard link when on the same disk, else a copy)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        os.link(source, temp)
    except OSError:
        shutil.copyfile(source, temp)
    os.replace(temp, target)


def output_dir(screenplay: Screenplay, settings: RenderSettings) -> Path:
    return settings.store_root / screenplay.slug


def publish_outputs(
    screenplay: Screenplay,
    settings: RenderSettings,
    scenes: dict[str, dict[str, Any]],
    final: dict[str, Any] | None,
    *,
    wall_seconds: float,
) -> dict[str, Any]:
    """Copy the deliverables out of the store and write the manifest; returns the manifest."""
    store = settings.store
    out = output_dir(screenplay, settings)
    out.mkdir(parents=True, exist_ok=True)
    timelines = {}
    for scene_id, scene in scenes.items():
        clip = store.get(CLIP_STAGE, scene["clip_key"])
        if clip is not None:
            link_or_copy(clip.file(CLIP_FILE), out / "scenes" / f"{scene_id}.mp4")
        audio = store.get(AUDIO_STAGE, scene["audio_key"])
        if audio is not None:
            timelines[scene_id] = timeline_of(audio)
            for name in ("scene.srt", "scene.vtt"):
                link_or_copy(audio.file(name), out / "scenes" / f"{scene_id}{Path(name).suffix}")
    if timelines:
        draw_timeline(screenplay, timelines, out / "timeline.png")
    final_files = {}
    if final is not None:
        entry = store.get(FINAL_STAGE, final["key"])
        if entry is not None:
            for name in entry.files:
                link_or_copy(entry.file(name), out / name)
                final_files[name] = str(out / name)
    manifest = {
        "format": MANIFEST_FORMAT,
        "title": screenplay.title,
        "screenplay": str(screenplay.source_file),
        "rendered_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "renderer": settings.renderer,
        "devices": list(settings.devices),
        "store": str(settings.store_root),
        "output_dir": str(out),
        "final": {**final, "files": final_files} if final is not None else None,
        "video": str(out / FINAL_FILE) if final is not None else None,
        "timeline_png": str(out / "timeline.png") if timelines else None,
        "scenes": [scenes[scene.id] for scene in screenplay.scenes if scene.id in scenes],
        "totals": {
            "scenes": len(scenes),
            "frames": sum(s["frames"] for s in scenes.values()),
            "seconds": sum(s["seconds"] for s in scenes.values()),
            "chunks": sum(s["chunks"] for s in scenes.values()),
            "chunks_rendered": sum(s["chunks_rendered"] for s in scenes.values()),
            "chunks_cached": sum(s["chunks_cached"] for s in scenes.values()),
            "lines_voiced": sum(s["voiced"] for s in scenes.values()),
            "lines_cached": sum(s["voices_cached"] for s in scenes.values()),
            "wall_seconds": round(wall_seconds, 3),
        },
        "keys": referenced_keys(scenes, final),
    }
    with contextlib.suppress(FileNotFoundError):
        previous = (out / MANIFEST).read_text()
        (out / f"{MANIFEST}.previous").write_text(previous)
    write_json_atomic(out / MANIFEST, manifest)
    return manifest


def referenced_keys(scenes: dict[str, dict[str, Any]], final: dict[str, Any] | None) -> dict[str, list[str]]:
    """Store keys by stage that this render depends on (what `cache gc` must keep)."""
    keys: dict[str, list[str]] = {"tts": [], "scene-audio": [], "chunk": [], "clip": [], "final": []}
    for scene in scenes.values():
        keys["tts"].extend(scene["line_keys"])
        keys["scene-audio"].append(scene["audio_key"])
        keys["chunk"].extend(scene["chunk_keys"])
        keys["clip"].append(scene["clip_key"])
    if final is not None:
        keys["final"].append(final["key"])
    return {stage: sorted(set(values)) for stage, values in keys.items()}


def screenplay_report(manifest: dict[str, Any]) -> str:
    """Markdown for the Prefect UI: what was rendered, what came from the cache, where the files are."""
    totals = manifest["totals"]
    rows = [
        f"| {s['scene_id']} | {s['chunks']} | {s['chunks_rendered']} | {s['chunks_cached']} | "
        f"{s['seconds']:.1f} | {s['wall_seconds']:.1f} | {s['device']} |"
        for s in manifest["scenes"]
    ]
    video = manifest["video"] or "not stitched (not every scene was rendered)"
    lines = [
        f"# {manifest['title']}",
        "",
        f"- renderer: **{manifest['renderer']}** on {', '.join(manifest['devices'])}",
        f"- video: `{video}`",
        f"- timeline picture: [{manifest['timeline_png']}](file://{manifest['timeline_png']})"
        if manifest["timeline_png"]
        else "- timeline picture: none",
        f"- {totals['seconds']:.1f} s of video, {totals['chunks']} chunks "
        f"({totals['chunks_rendered']} rendered, {totals['chunks_cached']} cached), "
        f"{totals['lines_voiced']} lines voiced ({totals['lines_cached']} cached), "
        f"wall time {totals['wall_seconds']:.1f} s",
        "",
        "| scene | chunks | rendered | cached | video s | wall s | device |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
    return "\n".join(lines) + "\n"
