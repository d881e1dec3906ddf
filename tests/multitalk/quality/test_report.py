"""The gates in the manifest and the render's markdown, read back from the chunk entries."""

from __future__ import annotations

from pathlib import Path

from multitalk.quality.report import gates_markdown, gates_report
from multitalk.quality.verdict import GateScore, Verdict
from multitalk.store.store import Store


def gates(binding: float, **extra: object) -> dict:
    verdict = Verdict((GateScore("blank", 0.0, 0.05, False), GateScore("binding", binding, 0.6, True)))
    return {"seed": 42, **verdict.to_json(), **extra}


def test_report_names_rerolled_and_failing_chunks(tmp_path: Path) -> None:
    store = Store(tmp_path)
    attempts = [
        {"attempt": 0, "seed": 42, "key": "a0", "passed": False, "failed": ["binding"]},
        {"attempt": 1, "seed": 7, "key": "a1", "passed": True, "failed": []},
    ]
    store.put("chunk", "k0", gates=gates(0.95, kept=0, attempts=[{"attempt": 0, "seed": 42, "passed": True}]))
    store.put("chunk", "k1", gates=gates(0.9, kept=1, attempts=attempts))
    store.put("chunk", "k2", gates=gates(0.1))  # warn mode: scored, not re-rolled
    store.put("chunk", "k3")  # an ungated chunk
    report = gates_report(store, [("car", ["k0", "k1", "k2", "k3"])])
    assert report["chunks_gated"] == 3
    assert report["rerolled"] == ["car#1"] and report["failing"] == ["car#2"]
    row = report["scenes"]["car"][1]
    assert row["kept"] == 1 and row["scores"] == {"blank": 0.0, "binding": 0.9} and len(row["attempts"]) == 2
    markdown = gates_markdown(report)
    assert "re-rolled: car#1; still failing: car#2" in markdown
    assert "| car | 1 | pass | 2 | 1 | 0 | 0.9 |" in markdown
    assert "| car | 2 | FAIL binding | 1 | 0 | 0 | 0.1 ✗ |" in markdown


def test_no_gated_chunk_no_section(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.put("chunk", "k0")
    assert gates_markdown(gates_report(store, [("cafe", ["k0"])])) == ""
