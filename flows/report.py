"""The render report shown in the Prefect UI (a markdown artifact): what was rendered, cached, and where."""

from __future__ import annotations

from typing import Any

from multitalk.quality.report import gates_markdown


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
    gates = gates_markdown(manifest.get("gates") or {})
    return "\n".join(lines) + "\n" + ("\n" + gates if gates else "")
