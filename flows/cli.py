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


@app.command()
def render(
    file: Path = typer.Argument(..., help="Screenplay YAML file."),  # noqa: B008
    scenes: list[str] = typer.Option(None, "--scenes", "-s", help="Only these scene ids (repeat or comma-separate)."),  # noqa: B008
    force: list[str] = typer.Option(  # noqa: B008
        None, "--force", "-f", help="Recompute these stages: tts, align, chunks, clip, final, or all."
    ),
    renderer: str = typer.Option(None, "--renderer", "-r", help="preview or multitalk (default: the screenplay's)."),
    outputs: Path = typer.Option(None, "--outputs", "-o", help="Outputs and cache root (default: ./outputs)."),  # noqa: B008
    weights: Path = typer.Option(None, "--weights", "-w", help="Folder of the official weights."),  # noqa: B008
    devices: list[str] = typer.Option(None, "--device", "-d", help="Devices to spread scenes over (repeat)."),  # noqa: B008
) -> None:
    """Render a screenplay to outputs/<name>/final.mp4 through the Prefect flow, with progress bars."""
    try:
        load_screenplay(file)
    except ScreenplayError as error:
        for problem in error.problems:
            console.print(str(problem), markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None
    from flows.progress_display import RenderProgress
    from flows.render_screenplay import render_screenplay

    with RenderProgress(console) as progress:
        try:
            manifest = render_screenplay(
                str(file.resolve()),
                scenes=scenes or None,
                force=force or None,
                renderer=renderer,
                store_root=str(outputs.resolve()) if outputs else None,
                weights=str(weights.resolve()) if weights else None,
                devices=devices or None,
            )
        except (ScreenplayError, ValueError) as error:
            progress.stop()
            console.print(str(error), markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_INVALID) from None
    totals = manifest["totals"]
    console.print(
        f"[bold]{manifest['title']}[/]: {totals['seconds']:.1f}s of video, {totals['chunks']} chunks "
        f"({totals['chunks_rendered']} rendered, {totals['chunks_cached']} cached), "
        f"{totals['wall_seconds']:.1f}s wall"
    )
    console.print(f"video: {manifest['video'] or 'not stitched (not every scene rendered)'}", markup=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
