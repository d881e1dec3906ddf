"""`multitalk import`: official MultiTalk job files (`--input_json`) as a screenplay that validates and renders."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.console import Console

from multitalk.audio.audio_io import write_text
from multitalk.screenplay import ScreenplayError, load_screenplay
from multitalk.screenplay.official_job import JobError, import_jobs

console = Console(highlight=False)
EXIT_INVALID = 2
HEADER = (
    "# Imported from official MultiTalk job files by `multitalk import` ({jobs}).\n"
    "# Boxes are converted from the official [top, left, bottom, right] to [x0, y0, x1, y1].\n"
)


class _Dumper(yaml.SafeDumper):
    """Safe YAML with short lists of numbers (boxes) on one line, as an author writes them."""


def _list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flow = all(isinstance(item, int | float) for item in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(list, _list)


def import_command(
    jobs: list[Path] = typer.Argument(..., help="Official job JSON files (one scene each)."),  # noqa: B008
    output: Path = typer.Option(None, "--output", "-o", help="Screenplay to write (default: <first job>.yaml)."),  # noqa: B008
) -> None:
    """Convert official MultiTalk job JSON files into one screenplay (assets copied beside it)."""
    target = output or Path(f"{jobs[0].stem}.yaml")
    try:
        document = import_jobs(jobs, target)
    except JobError as error:
        console.print(str(error), markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None
    text = HEADER.format(jobs=", ".join(job.name for job in jobs))
    text += yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    write_text(target, text)
    try:
        screenplay = load_screenplay(target)
    except ScreenplayError as error:  # e.g. a box outside the image: say so, the file is there to fix
        for problem in error.problems:
            console.print(str(problem), markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None
    console.print(f"wrote {target} ({len(screenplay.scenes)} scenes)", markup=False)
