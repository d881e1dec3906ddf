"""The `multitalk` command line: validate, render, timeline, cast, plan, cache, server, doctor, voices, import,
studio.

Commands that only read a screenplay (validate, timeline, cast) import no Prefect, so authors get answers at once.
Rendering runs the same Prefect flow as deployments do, with rich progress bars on top.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from flows.cache_commands import cache_app
from flows.doctor import doctor
from flows.import_command import import_command
from flows.server import server_app
from flows.voices_command import voices
from multitalk.screenplay import Screenplay, ScreenplayError, load_screenplay

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn a YAML screenplay into a multi-person talking video (MultiTalk, under Prefect).",
)
console = Console(highlight=False)
EXIT_INVALID = 2
EXIT_FAILED = 1
Loaded = TypeVar("Loaded")


@app.callback()
def _root() -> None:
    """Turn a YAML screenplay into a multi-person talking video (MultiTalk, under Prefect)."""


@app.command()
def validate(
    files: list[Path] = typer.Argument(..., help="Screenplay YAML files."),  # noqa: B008
) -> None:
    """Check screenplays; print `file:line:col: field: problem` for each problem (exit 2 if any)."""
    failed = crashed = False
    for file in files:
        try:
            screenplay = load_screenplay(file)
        except ScreenplayError as error:
            failed = True
            for problem in error.problems:
                console.print(str(problem), markup=False, soft_wrap=True)
            continue
        except Exception as error:  # a bug, not the author's mistake: one line (and exit 1), the next file goes on
            crashed = True
            text = " ".join(str(error).split())
            console.print(f"{file}: validate failed ({type(error).__name__}: {text}); please report it", markup=False)
            continue
        for warning in screenplay.warnings:
            console.print(f"warning: {warning}", markup=False, soft_wrap=True)
        lines = sum(len(scene.lines) for scene in screenplay.scenes)
        console.print(f"ok: {file} ({len(screenplay.scenes)} scenes, {lines} lines)", markup=False, soft_wrap=True)
        _fallback_notes(screenplay)
    if failed:
        raise typer.Exit(EXIT_INVALID)
    if crashed:
        raise typer.Exit(EXIT_FAILED)


def _fallback_notes(screenplay: Screenplay) -> None:
    """Say (on stderr) which characters speak with their espeak fallback on this machine, and why."""
    from multitalk.audio.voice_catalog import fallback_note

    for name, character in screenplay.characters.items():
        note = fallback_note(character, screenplay.project_dir)
        if note:
            typer.echo(f"note: {screenplay.source_file.name}: {name}: {note}", err=True)


# Model settings flags: `render` and `plan` override defaults.model the same way.
PresetFlag = Annotated[str | None, typer.Option("--preset", help="Override defaults.model.preset: fast, hero.")]
LoraFlag = Annotated[
    list[str] | None,
    typer.Option("--lora", help="A LoRA to merge, PATH[:STRENGTH] (repeat; replaces defaults.model.loras)."),
]
QuantizeFlag = Annotated[
    str | None, typer.Option("--quantize", help="Override defaults.model.quantize: none, fp8, int8.")
]
OffloadFlag = Annotated[
    str | None, typer.Option("--offload", help="Override defaults.model.offload: none, t5, blocks, sequential.")
]
ResidentFlag = Annotated[
    int | None, typer.Option("--resident-blocks", help="With --offload blocks: DiT blocks kept on the GPU.")
]
AttentionFlag = Annotated[
    str | None, typer.Option("--attention", help="Override defaults.model.attention: auto, flash3, flash2, sage, sdpa.")
]
CompileFlag = Annotated[
    bool | None,
    typer.Option("--compile/--no-compile", help="torch.compile the DiT blocks (default: the screenplay's)."),
]
TilingFlag = Annotated[
    bool | None, typer.Option("--vae-tiling/--no-vae-tiling", help="Tiled VAE decode (default: the screenplay's).")
]
FamilyFlag = Annotated[
    str | None, typer.Option("--family", help="Override defaults.model.family: multitalk, infinitetalk.")
]
MODEL_FLAGS = {
    "family": "--family",
    "preset": "--preset",
    "loras": "--lora",
    "quantize": "--quantize",
    "offload": "--offload",
    "resident_blocks": "--resident-blocks",
    "attention": "--attention",
    "compile": "--compile/--no-compile",
    "vae_tiling": "--vae-tiling/--no-vae-tiling",
}


def model_flags(loras: list[str] | None = None, **values: Any) -> dict[str, Any]:
    """The `model_settings` overrides the flags ask for (unset flags left out): the same dict the flows take.

    `--lora PATH[:STRENGTH]` paths are relative to the working directory, so they travel as absolute paths.
    """
    settings = {name: value for name, value in values.items() if value is not None}
    if loras:
        settings["loras"] = [_lora_flag(text) for text in loras]
    return settings


def _lora_flag(text: str) -> dict[str, Any]:
    path, _, strength = text.rpartition(":") if _has_strength(text) else (text, "", "")
    lora: dict[str, Any] = {"path": str(Path(path).expanduser().resolve())}
    if strength:
        lora["strength"] = float(strength)
    return lora


def _has_strength(text: str) -> bool:
    """`PATH:STRENGTH` when what follows the last colon is a number (a Windows drive or odd name stays a path)."""
    head, sep, tail = text.rpartition(":")
    try:
        float(tail)
    except ValueError:
        return False
    return bool(sep and head)


def _load_or_exit(file: Path, load: Callable[[Path], Loaded] = load_screenplay) -> Loaded:
    """`load(file)`, or each located problem printed on its own line and exit 2 (no traceback)."""
    try:
        return load(file)
    except ScreenplayError as error:
        for problem in error.problems:
            console.print(str(problem), markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None


def _load_with_model_flags(file: Path, loras: list[str] | None, **values: Any) -> tuple[Screenplay, dict[str, Any]]:
    """The screenplay with the model flags of `render`/`plan` applied, and those flags as `model_settings`."""
    screenplay = _load_or_exit(file)
    overrides = model_flags(loras, **values)
    return apply_model_flags(screenplay, overrides), overrides


def apply_model_flags(screenplay: Screenplay, overrides: dict[str, Any]) -> Screenplay:
    """The screenplay with the flags applied; a bad value is one line naming the flag and what is allowed (exit 2)."""
    from multitalk.screenplay.model_settings import ModelOverrideError, apply_model_settings

    try:
        return apply_model_settings(screenplay, overrides, names=MODEL_FLAGS)
    except ModelOverrideError as error:
        console.print(f"error: {error}", markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None


@app.command()
def render(
    file: Path = typer.Argument(..., help="Screenplay YAML file."),  # noqa: B008
    scenes: list[str] = typer.Option(None, "--scenes", "-s", help="Only these scene ids (repeat or comma-separate)."),  # noqa: B008
    force: list[str] = typer.Option(  # noqa: B008
        None, "--force", "-f", help="Recompute these stages: voice, align, chunk, clip, final, or all."
    ),
    renderer: str = typer.Option(None, "--renderer", "-r", help="preview or multitalk (default: the screenplay's)."),
    outputs: Path = typer.Option(None, "--outputs", "-o", help="Outputs and cache root (default: ./outputs)."),  # noqa: B008
    weights: Path = typer.Option(None, "--weights", "-w", help="Folder of the official weights."),  # noqa: B008
    model: str = typer.Option(None, "--model", help="Model config of the weights (default multitalk-14b)."),
    devices: list[str] = typer.Option(  # noqa: B008
        None,
        "--device",
        "-d",
        help="Devices to spread scenes over (repeat); cuda:0+cuda:1 renders one scene across both.",
    ),
    gpus_per_scene: int = typer.Option(
        None, "--gpus-per-scene", help="Cut the devices into groups of N, each rendering one scene across its N."
    ),
    scene_deployment: str = typer.Option(
        None, "--scene-deployment", help="Fan scenes out to this deployment's workers, e.g. render-scene/gpu."
    ),
    preset: PresetFlag = None,
    lora: LoraFlag = None,
    quantize: QuantizeFlag = None,
    offload: OffloadFlag = None,
    resident_blocks: ResidentFlag = None,
    attention: AttentionFlag = None,
    compile_dit: CompileFlag = None,
    vae_tiling: TilingFlag = None,
    family: FamilyFlag = None,
) -> None:
    """Render a screenplay to outputs/<name>/final.mp4 through the Prefect flow, with progress bars."""
    screenplay, model_settings = _load_with_model_flags(
        file,
        lora,
        family=family,
        preset=preset,
        quantize=quantize,
        offload=offload,
        resident_blocks=resident_blocks,
        attention=attention,
        compile=compile_dit,
        vae_tiling=vae_tiling,
    )
    if (renderer or screenplay.defaults.renderer) == "multitalk":
        _check_weights(weights, screenplay)
    _check_outputs(outputs)
    if not scenes and not scene_deployment:
        from multitalk.audio.engine import VoiceError

        try:
            done = _up_to_date(screenplay, force, renderer, outputs, weights, model, devices, gpus_per_scene)
        except (ScreenplayError, VoiceError, ValueError, FileNotFoundError) as error:
            console.print(str(error), markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_INVALID) from None
        except OSError as error:  # e.g. a full disk while publishing: one sentence, no traceback
            _fail(error, outputs)
        if done is not None:
            console.print(f"[bold]{screenplay.title}[/]: up to date ({done['totals']['chunks']} chunks in the store)")
            console.print(f"video: {done['video']}", markup=False, soft_wrap=True)
            return
    from flows.prefect_env import command_heartbeats, configure_local_prefect, settle_events
    from flows.server import use_running_server
    from flows.settings import default_outputs
    from multitalk.stages import Stage, align, parse_stages
    from multitalk.stages.plan import select_scenes
    from multitalk.store.store import Store

    # An unknown scene id or stage: the flow reports it, in its terms. Forced audio is redone by its tasks.
    with contextlib.suppress(ValueError):
        chosen = [screenplay.scene(scene_id) for scene_id in select_scenes(screenplay, scenes)]
        if not parse_stages(force) & {Stage.VOICE, Stage.ALIGN}:  # voiced and laid out while Prefect starts
            align.audio_ahead(Store((outputs or default_outputs()).resolve()), screenplay, chosen)
    configure_local_prefect()
    own_server = not os.environ.get("PREFECT_API_URL")  # else the user's (a team server)
    temporary = use_running_server() is None and own_server
    from flows.console_failures import keep_failures_off_the_console
    from flows.progress_display import RenderProgress
    from flows.render_screenplay import render_screenplay

    keep_failures_off_the_console()
    with RenderProgress(console) as progress, command_heartbeats(own_server):
        try:
            state = render_screenplay(
                str(file.resolve()),
                scenes=scenes or None,
                force=force or None,
                renderer=renderer,
                store_root=str(outputs.resolve()) if outputs else None,
                weights=str(weights.resolve()) if weights else None,
                model=model,
                devices=devices or None,
                scene_deployment=scene_deployment,
                gpus_per_scene=gpus_per_scene,
                model_settings=model_settings or None,
                return_state=True,
            )
            if temporary:  # it stops when this process exits: let it record the run first
                settle_events(state.state_details.flow_run_id)
            manifest = state.result()
        except Exception as error:  # the CLI's boundary: one line in the user's terms; Prefect logged the traceback
            progress.stop()
            _fail(error, outputs)
    totals = manifest["totals"]
    console.print(
        f"[bold]{manifest['title']}[/]: {totals['seconds']:.1f}s of video, {totals['chunks']} chunks "
        f"({totals['chunks_rendered']} rendered, {totals['chunks_cached']} cached), "
        f"{totals['wall_seconds']:.1f}s wall"
    )
    for line in clip_lines(manifest, partial=bool(scenes)):
        console.print(line, markup=False, soft_wrap=True)

    gates = manifest.get("gates") or {}
    if gates.get("chunks_gated"):
        console.print(
            f"gates: {gates['chunks_gated']} chunks checked; re-rolled: {', '.join(gates['rerolled']) or 'none'}; "
            f"still failing: {', '.join(gates['failing']) or 'none'}",
            markup=False,
            soft_wrap=True,
        )


def clip_lines(manifest: dict, *, partial: bool) -> list[str]:
    """Where the render's videos are: the final video, and each scene's clip when only some scenes were asked for."""
    lines = []
    if partial or manifest["video"] is None:
        scenes_dir = Path(manifest["output_dir"]) / "scenes"
        for row in manifest["scenes"]:
            lines.append(f"clip {row['scene_id']}: {scenes_dir / (row['scene_id'] + '.mp4')} ({row['seconds']:.2f}s)")
    if manifest["video"] is not None:
        lines.append(f"video: {manifest['video']}")
    else:
        lines.append(
            f"video: not stitched ({len(manifest['scenes'])} scenes rendered, the clips above); "
            "render without --scenes to stitch final.mp4"
        )
    return lines


@app.command()
def timeline(
    file: Path = typer.Argument(..., help="Screenplay YAML file."),  # noqa: B008
    outputs: Path = typer.Option(None, "--outputs", "-o", help="Outputs and cache root (default: ./outputs)."),  # noqa: B008
    out: Path = typer.Option(None, "--out", help="PNG to write (default: outputs/<name>/timeline.png)."),  # noqa: B008
) -> None:
    """Voice every line and lay out the scenes; draw who speaks when (one lane per speaker per scene)."""
    from rich.progress import Progress

    from flows.settings import default_outputs
    from multitalk.audio.timeline_plot import draw_timeline
    from multitalk.outputs import output_dir
    from multitalk.screenplay.load import load_screenplay_with_source
    from multitalk.stages.render import voice_and_align
    from multitalk.stages.settings import RenderSettings

    screenplay, source = _load_or_exit(file, load_screenplay_with_source)
    root = outputs or default_outputs()
    settings = RenderSettings.resolve(screenplay, renderer="preview", store_root=root)
    timelines = {}
    try:
        with Progress(console=console, transient=True) as progress:
            bar = progress.add_task("voicing and aligning scenes", total=len(screenplay.scenes))
            for scene in screenplay.scenes:
                aligned, _ = voice_and_align(screenplay, source, scene, settings)
                timelines[scene.id] = aligned.timeline()
                progress.advance(bar)
    except Exception as error:  # bad input (located, exit 2) or a full disk: one line, no traceback
        _fail(error, root)
    target = out or output_dir(screenplay, root, claim=True) / "timeline.png"
    draw_timeline(screenplay, timelines, target)
    seconds = sum(t.duration for t in timelines.values())
    console.print(f"{target} ({len(timelines)} scenes, {seconds:.1f}s)", markup=False, soft_wrap=True)


@app.command()
def cast(
    file: Path = typer.Argument(..., help="Screenplay YAML file."),  # noqa: B008
    outputs: Path = typer.Option(None, "--outputs", "-o", help="Outputs root (default: ./outputs)."),  # noqa: B008
    out: Path = typer.Option(None, "--out", help="Folder for the pictures (default: outputs/<name>/cast)."),  # noqa: B008
) -> None:
    """Draw each scene's cast: the faces found, every speaker's region and the model's latent-grid masks."""
    from flows.settings import default_outputs
    from multitalk.vision.cast_picture import draw_cast
    from multitalk.vision.faces import FaceModelsMissing, detect_faces_in_file

    screenplay = _load_or_exit(file)
    for warning in screenplay.warnings:
        console.print(f"warning: {warning}", markup=False, soft_wrap=True)
    folder = out or (outputs or default_outputs()) / screenplay.slug / "cast"
    for scene in screenplay.scenes:
        names = scene.on_screen_speakers()
        placements = [scene.cast[name].bbox or scene.cast[name].side for name in names]
        placements = [None if p == "center" else p for p in placements]
        try:
            faces = detect_faces_in_file(scene.image_path)
        except FaceModelsMissing as error:
            console.print(f"warning: {error}", markup=False, soft_wrap=True)
            faces = []
        colours = [screenplay.characters[name].color for name in names]
        picture = draw_cast(
            scene.image_path,
            names,
            placements,
            faces,
            screenplay.defaults.resolution,
            folder / f"{scene.id}.png",
            colours,
        )
        where = ", ".join(
            f"{name} [{', '.join(f'{v:g}' for v in p)}]" if isinstance(p, list) else f"{name} {p or 'center'}"
            for name, p in zip(names, placements, strict=True)
        )
        console.print(f"{picture}: {len(faces)} faces; {where or 'no one on screen'}", markup=False, soft_wrap=True)


def _up_to_date(
    screenplay: Screenplay,
    force: list[str] | None,
    renderer: str | None,
    outputs: Path | None,
    weights: Path | None,
    model: str | None,
    devices: list[str] | None,
    gpus_per_scene: int | None = None,
) -> dict | None:
    """The manifest when every stage of the render is already in the store (published now if need be), else None.

    Answers from the store alone, before any Prefect import: an unchanged screenplay costs a few stat calls.
    """
    import json

    from flows.settings import resolve_settings
    from multitalk.outputs import MANIFEST, output_dir, publish_outputs
    from multitalk.stages.plan import plan_screenplay

    settings = resolve_settings(
        screenplay,
        renderer=renderer,
        store_root=str(outputs.resolve()) if outputs else None,
        force=force,
        weights=str(weights.resolve()) if weights else None,
        model=model,
        devices=devices,
        gpus_per_scene=gpus_per_scene,
    )
    plan = plan_screenplay(screenplay, settings)
    if plan.final is None:
        return None
    try:
        published = json.loads((output_dir(screenplay, settings.store_root) / MANIFEST).read_text())
        if published["final"]["key"] == plan.final.key and all(
            Path(f).exists() for f in published["final"]["files"].values()
        ):
            return published
    except (OSError, ValueError, KeyError, TypeError):
        pass
    results = plan.scene_results(screenplay, settings.devices[0])
    return publish_outputs(screenplay, settings, results, plan.clips, plan.aligned, plan.final, wall_seconds=0.0)


def _fail(error: BaseException, outputs: Path | None = None) -> NoReturn:
    """Print a failed render as its located line(s), no traceback; exit 2 for bad input, 1 for anything else."""
    from flows.settings import default_outputs
    from multitalk.failures import describe, is_input_error

    for line in describe(error, (outputs or default_outputs()).resolve()):
        console.print(line, markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_INVALID if is_input_error(error) else EXIT_FAILED) from None


def _check_outputs(outputs: Path | None) -> None:
    """Fail before any work when the outputs folder cannot be written (read-only, a file, no permission)."""
    from flows.settings import default_outputs
    from multitalk.failures import check_outputs_writable

    try:
        check_outputs_writable((outputs or default_outputs()).resolve())
    except OSError as error:
        _fail(error, outputs)


def _check_weights(weights: Path | None, screenplay: Screenplay) -> None:
    """Fail fast, before any compute, when the official weights are not where the render will look."""
    from flows.settings import resolve_settings
    from multitalk.model.checkpoint import MissingWeightsError
    from multitalk.model.release import resolve_weights

    folder = weights or resolve_settings(screenplay, renderer="multitalk", devices=["cpu"]).weights
    if folder is None:
        console.print(
            "the multitalk renderer needs the official weights: pass --weights DIR, set MULTITALK_WEIGHTS, or "
            "set defaults.weights in the screenplay (README: Official weights); --renderer preview needs none",
            markup=False,
        )
        raise typer.Exit(EXIT_INVALID)
    try:
        for family, variant in _models_needed(screenplay):
            if family == "infinitetalk":
                from multitalk.model.infinitetalk_weights import resolve_infinitetalk_weights

                resolve_infinitetalk_weights(Path(folder), variant)
            else:
                resolve_weights(Path(folder))
    except MissingWeightsError as error:
        console.print(str(error), markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None


# Authoring: `multitalk studio [FOLDER]` (the studio/ package, a local web page over a folder of screenplays).
@app.command()
def studio(
    folder: Path = typer.Argument(Path("."), help="Folder of screenplays to serve (default: here)."),  # noqa: B008
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (only this machine by default)."),
    port: int = typer.Option(8765, "--port", "-p", help="Port to listen on."),
) -> None:
    """Open the authoring studio: edit, place the cast, hear, preview and send screenplays to the GPU pool."""
    if not folder.is_dir():
        console.print(f"{folder} is not a folder", markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID)
    from studio.server import serve

    url = f"http://{host}:{port}/"
    console.print(
        f"multitalk studio on {url} serving {folder.resolve()} (Ctrl+C stops it)", markup=False, soft_wrap=True
    )
    serve(folder, host=host, port=port)


def _models_needed(screenplay: Screenplay) -> list[tuple[str, str]]:
    """(family, InfiniteTalk adapter variant) of every scene, once each, in scene order."""
    needed: list[tuple[str, str]] = []
    for scene in screenplay.scenes:
        settings = screenplay.defaults.model.with_scene(scene.model)
        persons = max(1, min(2, len(scene.cast) or len(scene.on_screen_speakers())))
        variant = settings.variant if settings.variant != "auto" else ("single" if persons == 1 else "multi")
        item = (settings.family, variant if settings.family == "infinitetalk" else "")
        if item not in needed:
            needed.append(item)
    return needed


# `multitalk plan`: GPU time and memory before rendering (multitalk/generation/gpu_plan.py).
@app.command()
def plan(
    file: Path = typer.Argument(..., help="Screenplay YAML file."),  # noqa: B008
    gpu: str = typer.Option("h100", "--gpu", "-g", help="Card: h200, h100, a100-80, a100-40, l40s, 4090, 3090."),
    model: str = typer.Option(None, "--model", help="Model config (default: $MULTITALK_MODEL or multitalk-14b)."),
    preset: PresetFlag = None,
    lora: LoraFlag = None,
    quantize: QuantizeFlag = None,
    offload: OffloadFlag = None,
    resident_blocks: ResidentFlag = None,
    attention: AttentionFlag = None,
    family: FamilyFlag = None,
) -> None:
    """Estimate chunks, DiT forwards, GPU time and peak VRAM per scene on a GPU, before rendering."""
    import os

    from multitalk.generation.gpu_plan import card, format_plan, plan_screenplay
    from multitalk.model.configs import get_config

    screenplay, _ = _load_with_model_flags(
        file,
        lora,
        family=family,
        preset=preset,
        quantize=quantize,
        offload=offload,
        resident_blocks=resident_blocks,
        attention=attention,
    )
    try:
        config = get_config(model or os.environ.get("MULTITALK_MODEL", "multitalk-14b"))
        lines = format_plan(plan_screenplay(screenplay, config, card(gpu)))
    except ValueError as error:
        console.print(f"error: {error}", markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)


# Maintenance commands: `multitalk cache ls|gc` (flows/cache_commands.py) and `multitalk doctor` (flows/doctor.py).
app.add_typer(cache_app, name="cache")
app.add_typer(server_app, name="server")
app.command()(doctor)
app.command()(voices)  # `multitalk voices` (flows/voices_command.py)
app.command(name="import")(import_command)  # `multitalk import JOB.json...` (flows/import_command.py)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
