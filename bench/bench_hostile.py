"""Validate time and peak memory on hostile input: every corpus case, a 1 MiB screenplay, long recordings.

Each measurement runs in its own subprocess so its peak RSS (VmHWM) is its own. Run by hand:

    python bench/bench_hostile.py          # prints a Markdown table for bench/RESULTS.md
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "multitalk" / "screenplay" / "corpus"
MEASURE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from bench.memory import status_kib
from multitalk.screenplay import ScreenplayError, load_screenplay
rows = []
for path in sys.argv[2:]:
    started = time.monotonic()
    try:
        load_screenplay(path)
        outcome = "ok"
    except ScreenplayError as error:
        outcome = f"{len(error.problems)} problem(s)"
    rows.append({"case": path, "seconds": time.monotonic() - started, "outcome": outcome})
print(json.dumps({"rows": rows, "peak_mib": status_kib("VmHWM") / 1024}))
"""
VOICE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from bench.memory import status_kib
from multitalk.audio.line_audio import synthesise_line
from multitalk.screenplay import load_screenplay
started = time.monotonic()
screenplay = load_screenplay(sys.argv[2])
validated, validate_s = status_kib("VmHWM") / 1024, time.monotonic() - started
started = time.monotonic()
synthesise_line(screenplay, screenplay.scenes[0].lines[0], sys.argv[3])
print(json.dumps({"validate_mib": validated, "validate_s": validate_s, "voice_mib": status_kib("VmHWM") / 1024,
                  "voice_s": time.monotonic() - started}))
"""


def measure(code: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code, str(REPO), *args], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def big_screenplay(folder: Path) -> Path:
    """A valid screenplay just under the 1 MiB limit (about 15,000 lines)."""
    rows = ["title: big", "characters:", "  alice: en-us+f3", "scenes:"]
    scene = 0
    while sum(len(row) + 1 for row in rows) < 1_000_000:
        rows.append(f"  - id: s{scene}\n    image: two.png\n    lines:")
        rows += [f'      - alice: "Line number {j} of scene {scene}, said with feeling."' for j in range(40)]
        scene += 1
    (folder / "two.png").write_bytes((CORPUS / "two.png").read_bytes())
    path = folder / "big.yaml"
    path.write_text("\n".join(rows) + "\n")
    return path


def long_take(folder: Path, seconds: int) -> Path:
    rate = 48_000
    samples = np.zeros(seconds * rate, dtype=np.int16)
    samples[-rate:] = (0.3 * 32767 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)).astype(np.int16)
    sf.write(folder / "take.wav", samples, rate, subtype="PCM_16")
    (folder / "two.png").write_bytes((CORPUS / "two.png").read_bytes())
    path = folder / "take.yaml"
    path.write_text(
        "title: t\ncharacters:\n  rec: {engine: file}\nscenes:\n  - id: a\n    image: two.png\n"
        "    lines:\n      - rec: {audio: take.wav}\n"
    )
    return path


def main() -> None:
    cases = sorted(CORPUS.glob("*.yaml"))
    corpus = measure(MEASURE, *map(str, cases))
    slowest = max(corpus["rows"], key=lambda row: row["seconds"])
    print("| input | wall | peak RSS |\n|---|---|---|")
    print(
        f"| {len(cases)} corpus cases, one process | {sum(r['seconds'] for r in corpus['rows']):.2f} s total, slowest "
        f"{Path(slowest['case']).stem} {slowest['seconds']:.2f} s | {corpus['peak_mib']:.0f} MiB |"
    )
    with tempfile.TemporaryDirectory() as folder:
        big = measure(MEASURE, str(big_screenplay(Path(folder))))
        wall, peak = big["rows"][0]["seconds"], big["peak_mib"]
        print(f"| valid 1 MiB screenplay (15,280 lines) | {wall:.2f} s | {peak:.0f} MiB |")
    for seconds in (60, 299):
        with tempfile.TemporaryDirectory() as folder:
            take = measure(VOICE, str(long_take(Path(folder), seconds)), str(Path(folder) / "line.wav"))
            print(
                f"| {seconds} s recording, sound only in its last second: validate / voice | "
                f"{take['validate_s']:.2f} s / {take['voice_s']:.2f} s | "
                f"{take['validate_mib']:.0f} / {take['voice_mib']:.0f} MiB |"
            )


if __name__ == "__main__":
    main()
