"""A recording at the length limit, silent but for its last second, stays within bounded memory.

`validate` streams it through ffmpeg one second at a time to find sound (here only at the very end, the worst
case); voicing the line holds it whole, which the 300 s limit bounds. Before these limits a long, mostly silent
recording drove a render past 12 GB. The bound here is a loose guard, not a benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from multitalk.screenplay.limits import MAX_RECORDING_SECONDS

RATE = 8_000
MAX_RSS_MB = 500
# Peak RSS as VmHWM of this process's own address space (ru_maxrss would count the pytest process it forked from).
PROBE = """
import json, sys
def vm_hwm_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
from multitalk.screenplay import load_screenplay
from multitalk.audio.line_audio import synthesise_line
screenplay = load_screenplay(sys.argv[1])
validated = vm_hwm_mb()
line = screenplay.scenes[0].lines[0]
info = synthesise_line(screenplay, line, sys.argv[2])
voiced = vm_hwm_mb()
print(json.dumps({"validated_mb": validated, "voiced_mb": voiced, "duration": info.duration}))
"""


def test_longest_mostly_silent_recording_validates_and_voices_in_bounded_memory(tmp_path: Path) -> None:
    seconds = int(MAX_RECORDING_SECONDS) - 1
    samples = np.zeros(seconds * RATE, dtype=np.int16)
    tone = np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE)
    samples[-RATE:] = (0.3 * 32767 * tone).astype(np.int16)
    sf.write(tmp_path / "take.wav", samples, RATE, subtype="PCM_16")
    (tmp_path / "two.png").write_bytes((Path(__file__).parent / "corpus" / "two.png").read_bytes())
    path = tmp_path / "play.yaml"
    path.write_text(
        "title: Long take\ncharacters:\n  rec: {engine: file}\nscenes:\n"
        # An explicit place: this measures the recording, not the face detector that a cast-less scene runs.
        "  - id: a\n    image: two.png\n    cast: {rec: center}\n    lines:\n      - rec: {audio: take.wav}\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), str(tmp_path / "line.wav")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout)
    assert 0.9 < measured["duration"] < 1.2  # trimmed to the last second's tone
    assert measured["validated_mb"] < MAX_RSS_MB and measured["voiced_mb"] < MAX_RSS_MB, measured
