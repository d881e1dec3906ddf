"""The gates in a render's reports: per chunk scores and attempts for the manifest, and their markdown.

Read back from the chunk entries (the scores live with the frames they judge), so a render that found every
chunk in the store reports exactly what the render that made them saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from multitalk.store.store import Store

CHUNK_STAGE = "chunk"  # the chunk stage's store folder (`multitalk.stages.Stage.CHUNK`)


def chunk_row(index: int, key: str, gates: Mapping[str, Any]) -> dict[str, Any]:
    """One chunk's line: pass/fail, its scores by gate, which attempt was kept out of how many."""
    attempts = gates.get("attempts") or [{"attempt": 0, "seed": gates.get("seed"), "passed": gates["passed"]}]
    return {
        "index": index,
        "key": key,
        "passed": gates["passed"],
        "failed": gates["failed"],
        "scores": {score["name"]: score["score"] for score in gates["scores"]},
        "thresholds": {score["name"]: score["threshold"] for score in gates["scores"]},
        "kept": gates.get("kept", 0),
        "seed": gates.get("seed"),
        "attempts": list(attempts),
    }


def scene_gates(store: Store, chunk_keys: Iterable[str]) -> list[dict[str, Any]]:
    """The gate rows of a scene's chunks, in order; ungated chunks (preview, gates off) have none."""
    rows = []
    for index, key in enumerate(chunk_keys):
        entry = store.get(CHUNK_STAGE, key)
        gates = entry.result.get("gates") if entry is not None else None
        if gates:
            rows.append(chunk_row(index, key, gates))
    return rows


def gates_report(store: Store, scenes: Iterable[tuple[str, Iterable[str]]]) -> dict[str, Any]:
    """The manifest's `gates`: per scene chunk rows, and which chunks were re-rolled and which still fail."""
    per_scene = {scene_id: scene_gates(store, keys) for scene_id, keys in scenes}
    rerolled = [f"{s}#{row['index']}" for s, rows in per_scene.items() for row in rows if len(row["attempts"]) > 1]
    failing = [f"{s}#{row['index']}" for s, rows in per_scene.items() for row in rows if not row["passed"]]
    gated = sum(len(rows) for rows in per_scene.values())
    return {"chunks_gated": gated, "rerolled": rerolled, "failing": failing, "scenes": per_scene}


def gates_markdown(report: Mapping[str, Any]) -> str:
    """A markdown section for the render artifact: a summary line and one row per gated chunk."""
    if not report or not report.get("chunks_gated"):
        return ""
    names: list[str] = []
    for rows in report["scenes"].values():
        for row in rows:
            names += [name for name in row["scores"] if name not in names]
    lines = [
        "## Quality gates",
        "",
        f"{report['chunks_gated']} chunks checked; re-rolled: {', '.join(report['rerolled']) or 'none'}; "
        f"still failing: {', '.join(report['failing']) or 'none'}",
        "",
        "| scene | chunk | result | attempts | kept | " + " | ".join(names) + " |",
        "|---|---|---|---|---|" + "---|" * len(names),
    ]
    for scene_id, rows in report["scenes"].items():
        for row in rows:
            cells = []
            for name in names:
                score = row["scores"].get(name)
                mark = " ✗" if name in row["failed"] else ""
                cells.append("n/a" if score is None else f"{score:.3g}{mark}")
            result = "pass" if row["passed"] else "FAIL " + ", ".join(row["failed"])
            lines.append(
                f"| {scene_id} | {row['index']} | {result} | {len(row['attempts'])} | {row['kept']} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines) + "\n"
