"""`multitalk voices`: every voice this machine can speak with, per engine (what `voice:` may name)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from multitalk.audio.voice_catalog import available_voices

console = Console(highlight=False)


def voices(
    engine: str = typer.Option(None, "--engine", "-e", help="Only this engine: espeak, piper, kokoro or coqui."),
    project: Path = typer.Option(  # noqa: B008
        None, "--project", "-p", help="A screenplay's folder (Piper `model:` folders and Kokoro models are relative)."
    ),
    kokoro_model: str = typer.Option(None, "--kokoro-model", help="A Kokoro model folder to list the voices of."),
) -> None:
    """List the voices per engine (espeak-ng languages and variants, Piper and Kokoro voices, Coqui models)."""
    project_dir = project.resolve() if project else None
    listings = available_voices(project_dir, kokoro_model)
    if engine is not None:
        listings = [listing for listing in listings if listing.engine.split("-")[0] == engine]
        if not listings:
            console.print(f"unknown engine {engine!r} (engines: espeak, piper, kokoro, coqui)", markup=False)
            raise typer.Exit(2)
    for listing in listings:
        console.print(f"{listing.engine} ({len(listing.voices)}): {listing.note}", markup=False)
        for name in listing.voices:
            console.print(f"  {name}", markup=False)
