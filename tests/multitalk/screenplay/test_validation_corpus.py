"""Every malformed screenplay in `corpus/` yields exactly the problems its `# expect:` comments list.

Each corpus file ends with one `# expect: LINE:COL: path: message` comment per problem (`{dir}` stands for the
corpus folder), so a file documents the mistake it makes and what an author is told about it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from multitalk.screenplay import ScreenplayError, load_screenplay

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.glob("*.yaml"))
EXPECT = "# expect: "


def expected_problems(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [
        f"{path}:{line[len(EXPECT) :]}".replace("{dir}", str(CORPUS.resolve()))
        for line in lines
        if line.startswith(EXPECT)
    ]


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25
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
