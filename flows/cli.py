"""The `multitalk` command line: validate, render, timeline, cache, doctor.

Commands that only read a screenplay (validate, timeline) import no Prefect, so authors get answers at once.
Rendering runs the same Prefect flow as deployments do, with rich progress bars on top.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from multitalk.screenplay import ScreenplayError, load_screenplay

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn a YAML screenplay into a multi-person talking video (MultiTalk, under Prefect).",
)
console = Console(highlight=False)
EXIT_INVALID = 2


@app.callback()
def _root() -> None:
    """Turn a YAML screenplay into a multi-person talking video (MultiTalk, under Prefect)."""


@app.command()
def validate(
    files: list[Path] = typer.Argument(..., help="Screenplay YAML files."),  # noqa: B008
) -> None:
    """Check screenplays; print `file:line:col: field: problem` for each problem (exit 2 if any)."""
    failed = False
    for file in files:
        try:
            screenplay = load_screenplay(file)
        except ScreenplayError as error:
            failed = True
            for problem in error.problems:
                console.print(str(problem), markup=False, soft_wrap=True)
            continue
        lines = sum(len(scene.lines) for scene in screenplay.scenes)
        console.print(f"ok: {file} ({len(screenplay.scenes)} scenes, {lines} lines)", markup=False)
    if failed:
        raise typer.Exit(EXIT_INVALID)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
