"""What a render costs beyond its real work: no-op re-render, one-line edit, first render with/without a server.

Run by hand (minutes: it renders the screenplay three times from scratch):

    .venv/bin/python bench/bench_noop.py                                  # scripts_yaml/long_conversation.yaml
    .venv/bin/python bench/bench_noop.py --screenplay scripts_yaml/two_friends.yaml
    .venv/bin/python bench/bench_noop.py --edit-only     # library fills the store; then only no-op and edit

Everything runs as the user would run it, `multitalk ...` in a fresh process, on a copy of the screenplay's
folder, with its own Prefect home (no server running unless the script starts one) and the preview renderer:

1. first render, three ways, each into a fresh store: the library (`multitalk.render`, no Prefect, one scene
   at a time), the CLI with no Prefect server (each command starts a temporary one), and the CLI with
   `multitalk server start` running (the flow renders two scenes at once, so its wall can be lower than the
   library's). The fixed cost of a command is measured the same three ways on a one-line cut of the screenplay
   (its first scene's first line): overhead = CLI wall − library wall.
2. no-op: `multitalk render` of the unchanged screenplay against `multitalk validate` of it (medians of 3);
   target ratio ≤ 2.5.
3. one-line edit in one scene (server and its warm host running): the wall time beyond the render time of the
   chunks it re-rendered (each chunk entry records its own render seconds); target ≤ 5 s. Also checks that only
   that scene re-renders. Then a second edit of the same line run in its own process (`python -m flows.cli`, which
   does not hand off to the warm host), for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [str(Path(sys.executable).with_name("multitalk"))]  # the console script, as users run it (flows/launch.py)


def environment(state: Path) -> dict[str, str]:
    """This checkout first on the path, a Prefect home of our own, no Prefect server named."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    env.update(
        PYTHONPATH=str(REPO),
        MULTITALK_STATE=str(state),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    return env


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}")
    return wall, done.stdout + done.stderr


def cpu_ticks() -> tuple[int, int]:
    """(all, stolen) CPU ticks of this machine so far: time a virtual machine's host gave to other guests."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]), fields[7]


def manifest_of(outputs: Path) -> dict:
    (path,) = outputs.glob("*/manifest.json")
    return json.loads(path.read_text())


def chunk_render_seconds(outputs: Path, keys: set[str]) -> float:
    """Render seconds the chunk entries `keys` recorded."""
    total = 0.0
    for key in keys:
        entry = json.loads((outputs / "cache" / "chunk" / key / "entry.json").read_text())
        total += float(entry["result"].get("render_seconds", 0.0))
    return total


def edit_one_line(screenplay: Path, scene_index: int) -> tuple[str, str]:
    """Append a word to the last line of one scene (in the YAML text); returns (scene id, old text)."""
    sys.path.insert(0, str(REPO))
    from multitalk.screenplay import load_screenplay

    scene = load_screenplay(screenplay).scenes[scene_index]
    old = scene.lines[-1].text
    raw = screenplay.read_text()
    if raw.count(old) != 1:
        raise SystemExit(f"line {old!r} of scene {scene.id} is not unique in {screenplay}; pick another scene")
    screenplay.write_text(raw.replace(old, old.rstrip(".!?") + ", truly."))
    return scene.id, old


def tiny_copy(screenplay: Path) -> Path:
    """The screenplay cut to its first scene's first line, beside it: a render that is almost all overhead."""
    import yaml

    data = yaml.safe_load(screenplay.read_text())
    data["scenes"] = data["scenes"][:1]
    data["scenes"][0]["lines"] = data["scenes"][0]["lines"][:1]
    tiny = screenplay.with_name("tiny.yaml")
    tiny.write_text(yaml.safe_dump(data, sort_keys=False))
    return tiny


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenplay", type=Path, default=REPO / "scripts_yaml" / "long_conversation.yaml")
    parser.add_argument("--edit-scene", type=int, default=5, help="index of the scene whose last line is edited")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--edit-only", action="store_true", help="fill the store with the library, then measure only no-op and edit"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-noop-"))
    try:
        project = work / "project"
        shutil.copytree(args.screenplay.resolve().parent, project)
        screenplay = project / args.screenplay.name
        env = environment(work / "state")
        figures: dict[str, float | str] = {}

        # Fixed cost of one command: a one-line render (library vs CLI without and with a server), fresh stores.
        tiny = tiny_copy(screenplay)
        tiny_code = f"import multitalk; multitalk.render({str(tiny)!r}, outputs={str(work / 'tiny-lib')!r})"
        figures["tiny_library_s"], _ = timed([sys.executable, "-c", tiny_code], env)
        tiny_render = [*CLI, "render", str(tiny), "--renderer", "preview", "--outputs"]
        figures["tiny_cli_no_server_s"], _ = timed([*tiny_render, str(work / "tiny-a")], env)

        # --edit-only: the library fills the store that the CLI then finds (same stages, same keys).
        library = work / ("server" if args.edit_only else "library")
        code = f"import multitalk; multitalk.render({str(screenplay)!r}, outputs={str(library)!r}, renderer='preview')"
        render = [*CLI, "render", str(screenplay), "--renderer", "preview", "--outputs"]
        figures["first_library_s"], _ = timed([sys.executable, "-c", code], env)
        if not args.edit_only:
            figures["first_cli_no_server_s"], _ = timed([*render, str(work / "no-server")], env)
        figures["server_start_s"], _ = timed([*CLI, "server", "start"], env)
        try:
            figures["tiny_cli_server_s"], _ = timed([*tiny_render, str(work / "tiny-b")], env)
            outputs = work / "server"
            if not args.edit_only:
                figures["first_cli_server_s"], _ = timed([*render, str(outputs)], env)
            else:
                timed([*render, str(outputs)], env)  # publishes the library's render: "up to date"
            reference = manifest_of(outputs)

            validate = [timed([*CLI, "validate", str(screenplay)], env)[0] for _ in range(args.repeat)]
            noop = []
            for _ in range(args.repeat):
                wall, log = timed([*render, str(outputs)], env)
                if "up to date" not in log:
                    raise SystemExit(f"the unchanged screenplay was not up to date:\n{log[-2000:]}")
                noop.append(wall)
            figures["validate_s"] = statistics.median(validate)
            figures["noop_s"] = statistics.median(noop)

            before = {key for scene in reference["scenes"] for key in scene["chunk_keys"]}
            scene_id, _ = edit_one_line(screenplay, args.edit_scene)
            ticks = cpu_ticks()
            figures["edit_wall_s"], _ = timed([*render, str(outputs)], env)
            total, stolen = (now - then for now, then in zip(cpu_ticks(), ticks, strict=True))
            figures["edit_steal_pct"] = 100.0 * stolen / max(total, 1)
            edited = manifest_of(outputs)
            changed = {scene["scene_id"] for scene in edited["scenes"] if scene["chunks_rendered"]}
            if changed != {scene_id}:
                raise SystemExit(f"the edit of scene {scene_id} re-rendered scenes {sorted(changed)}")
            fresh = {key for scene in edited["scenes"] for key in scene["chunk_keys"]} - before
            figures["edit_scene"] = scene_id
            figures["edit_chunks"] = len(fresh)
            figures["edit_chunks_render_s"] = chunk_render_seconds(outputs, fresh)

            before = {key for scene in edited["scenes"] for key in scene["chunk_keys"]}
            edit_one_line(screenplay, args.edit_scene)
            in_process = [sys.executable, "-m", "flows.cli", *render[1:]]
            figures["edit_cold_wall_s"], _ = timed([*in_process, str(outputs)], env)
            fresh = {key for scene in manifest_of(outputs)["scenes"] for key in scene["chunk_keys"]} - before
            figures["edit_cold_chunks_render_s"] = chunk_render_seconds(outputs, fresh)
        finally:
            timed([*CLI, "server", "stop"], env)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    tiny = figures["tiny_library_s"]
    print(f"one-line render, library (no Prefect):  {tiny:7.1f} s")
    print(
        f"one-line render, CLI, no server:        {figures['tiny_cli_no_server_s']:7.1f} s "
        f"(overhead {figures['tiny_cli_no_server_s'] - tiny:+.1f} s)"
    )
    print(
        f"one-line render, CLI, server running:   {figures['tiny_cli_server_s']:7.1f} s "
        f"(overhead {figures['tiny_cli_server_s'] - tiny:+.1f} s)"
    )
    first = figures["first_library_s"]
    print(
        f"screenplay: {args.screenplay.name} ({reference['totals']['chunks']} chunks, "
        f"{reference['totals']['seconds']:.1f} s of video)"
    )
    print(f"first render, library (no Prefect):     {first:7.1f} s")
    if not args.edit_only:
        print(
            f"first render, CLI, no server:           {figures['first_cli_no_server_s']:7.1f} s "
            f"(overhead {figures['first_cli_no_server_s'] - first:+.1f} s)"
        )
        print(
            f"first render, CLI, server running:      {figures['first_cli_server_s']:7.1f} s "
            f"(overhead {figures['first_cli_server_s'] - first:+.1f} s; `multitalk server start` took "
            f"{figures['server_start_s']:.1f} s once)"
        )
    ratio = figures["noop_s"] / figures["validate_s"]
    print(
        f"no-op render {figures['noop_s']:.2f} s / validate {figures['validate_s']:.2f} s = {ratio:.2f} "
        f"(target <= 2.5: {'ok' if ratio <= 2.5 else 'MISSED'})"
    )
    overhead = figures["edit_wall_s"] - figures["edit_chunks_render_s"]
    print(
        f"one-line edit in {figures['edit_scene']}: {figures['edit_chunks']} chunks re-rendered "
        f"({figures['edit_chunks_render_s']:.1f} s of chunk rendering), {figures['edit_wall_s']:.1f} s wall, "
        f"overhead {overhead:.1f} s (target <= 5: {'ok' if overhead <= 5 else 'MISSED'})"
    )
    cold = figures["edit_cold_wall_s"] - figures["edit_cold_chunks_render_s"]
    print(
        f"the same edit again, in its own process (no warm host): {figures['edit_cold_wall_s']:.1f} s wall, "
        f"overhead {cold:.1f} s"
    )
    print(
        f"load average: {Path('/proc/loadavg').read_text().split()[0]}; CPU time stolen by the VM's host during the "
        f"edit: {figures['edit_steal_pct']:.0f}%"
    )


if __name__ == "__main__":
    main()
