"""Every malformed screenplay in `corpus/` yields exactly the problems its `# expect:` comments list.

Each corpus file ends with one `# expect: LINE:COL: path: message` comment per problem (`{dir}` stands for the
corpus folder), so a file documents the mistake it makes and what an author is told about it. The hostile cases
(YAML bombs, control characters, NaN and infinite numbers, image bombs, recordings without sound...) also run
through the real `multitalk validate` command, which must answer each with exit 2 and a located first line,
no traceback, and bounded time and memory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from multitalk.screenplay import ScreenplayError, load_screenplay

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.glob("*.yaml"))
EXPECT = "# expect: "
MAX_RSS_MB = 500  # loose guards against runaway memory and time, not benchmarks (bench/ has those)
MAX_SECONDS = 10.0
LOCATED = re.compile(r"^.+:\d+:\d+: \S.*")


def expected_problems(path: Path) -> list[str]:
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    return [
        f"{path}:{line[len(EXPECT) :]}".replace("{dir}", str(CORPUS.resolve()))
        for line in lines
        if line.startswith(EXPECT)
    ]


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 100
    assert all(expected_problems(case) for case in CASES), "every corpus file must declare what it expects"


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_malformed_screenplay_reports_exact_location_and_message(case: Path) -> None:
    with pytest.raises(ScreenplayError) as caught:
        load_screenplay(case)
    assert [str(problem) for problem in caught.value.problems] == expected_problems(case)


def test_validate_command_prints_every_problem_and_exits_2() -> None:
    cases = CASES[:5]
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "validate", *map(str, cases)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    printed = result.stdout.splitlines()
    assert printed == [line for case in cases for line in expected_problems(case)]


# Runs `multitalk validate` on each case in one process (interpreter start-up paid once) and reports, per case,
# the exit code, the output, the wall time and the process's peak RSS so far (monotonic: if it stays under the
# bound after the last case, every case stayed under it). Peak RSS is VmHWM of the process's own address space:
# ru_maxrss would also count the pytest process it was forked from (Linux carries it across exec).
_VM_HWM = """
def vm_hwm_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
"""
_BATCH = (
    _VM_HWM
    + """
import json, sys, time
from typer.testing import CliRunner
from flows.cli import app
runner = CliRunner()
for case in sys.argv[1:]:
    started = time.monotonic()
    result = runner.invoke(app, ["validate", case])
    print(json.dumps({
        "case": case, "exit": result.exit_code, "output": result.output,
        "crashed": None if result.exception is None or isinstance(result.exception, SystemExit)
        else repr(result.exception),
        "seconds": time.monotonic() - started,
        "rss_mb": vm_hwm_mb(),
    }), flush=True)
"""
)


def _check_answer(case: str, exit_code: int, output: str, seconds: float, rss_mb: float) -> None:
    assert exit_code == 2, f"{case}: exit {exit_code}\n{output}"
    assert "Traceback" not in output, f"{case}:\n{output}"
    first = output.splitlines()[0] if output else ""
    assert first.startswith(case + ":") and LOCATED.match(first), f"{case}: first line not located: {first!r}"
    assert seconds < MAX_SECONDS, f"{case}: {seconds:.1f}s"
    assert rss_mb < MAX_RSS_MB, f"{case}: peak RSS {rss_mb:.0f} MB"


def test_validate_answers_every_case_located_fast_and_small() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _BATCH, *map(str, CASES)], capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["case"] for row in rows] == [str(case) for case in CASES]
    for row in rows:
        assert row["crashed"] is None, f"{row['case']}: {row['crashed']}"
        _check_answer(row["case"], row["exit"], row["output"], row["seconds"], row["rss_mb"])


# `multitalk validate` in its own process, printing its own peak RSS last on stderr (after the command exits).
_PEAK_MARK = "\npeak-rss-mb "
_OWN_PROCESS = (
    _VM_HWM
    + f"""
import atexit, sys
atexit.register(lambda: sys.stderr.write({_PEAK_MARK!r} + str(vm_hwm_mb())))
from flows.cli import main
sys.argv = ["multitalk", *sys.argv[1:]]
main()
"""
)


def _hostile_files(folder: Path) -> list[Path]:
    """Screenplay paths that cannot live in git: a FIFO, devices, a folder, an oversized file, a symlink to a device."""
    fifo = folder / "fifo.yaml"
    os.mkfifo(fifo)
    huge = folder / "huge.yaml"
    huge.write_text("title: x\n" + "notes: [" + "1, " * 600_000 + "1]\n")
    zero = folder / "zero.yaml"
    zero.symlink_to("/dev/zero")
    (folder / "dir.yaml").mkdir()
    return [fifo, huge, zero, folder / "dir.yaml", Path("/dev/zero"), Path("/dev/urandom")]


@pytest.mark.parametrize("kind", ["fifo", "huge", "zero", "dir", "dev-zero", "dev-urandom"])
def test_validate_refuses_files_that_are_not_screenplays_in_its_own_process(tmp_path: Path, kind: str) -> None:
    index = ["fifo", "huge", "zero", "dir", "dev-zero", "dev-urandom"].index(kind)
    path = _hostile_files(tmp_path)[index]
    result = subprocess.run(
        [sys.executable, "-c", _OWN_PROCESS, "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=MAX_SECONDS + 20,  # a FIFO that hangs fails here, not forever
    )
    stderr, _, peak = result.stderr.rpartition(_PEAK_MARK)
    _check_answer(str(path), result.returncode, result.stdout + stderr, 0.0, float(peak))


def test_validate_command_accepts_the_bundled_examples() -> None:
    examples = sorted((Path(__file__).parents[3] / "scripts_yaml").glob("*.yaml"))
    if not examples:
        pytest.skip("no example screenplays yet")
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "validate", *map(str, examples)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "40"},  # narrower than any path: a checkout anywhere must not wrap the lines
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(line.startswith("ok: ") for line in result.stdout.splitlines())
