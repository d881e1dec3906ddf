"""Model settings from the command line and the Prefect parameters reach the screenplay the same way, and the keys.

`multitalk render`/`plan` flags and the `model_settings` parameter of the flows (and `multitalk.render`) all go
through `apply_model_settings`; what changes the output changes the chunk keys, what does not keeps a render
up to date.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app, model_flags
from flows.fan_out import scene_parameters
from flows.settings import resolve_settings
from multitalk.media.video_writer import EncodeSettings
from multitalk.renderers.registry import renderer_for
from multitalk.screenplay import load_screenplay
from multitalk.screenplay.model_settings import (
    FAST_LORA_FILE,
    LORAS_DIR,
    ModelOverrideError,
    apply_model_settings,
)
from multitalk.stages.plan import video_plan
from multitalk.stages.render import voice_and_align
from multitalk.stages.settings import RenderSettings
from multitalk.testing.tiny_release import write_tiny_lora, write_tiny_release

runner = CliRunner()


# --- flags -> the overrides dict -> effective settings ------------------------------------------------------
def test_flags_become_the_model_settings_dict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    flags = model_flags(
        ["style.safetensors:0.5", "plain.safetensors", "odd:name.safetensors"],
        preset="fast",
        quantize="fp8",
        offload="blocks",
        resident_blocks=12,
        attention="sdpa",
        compile=False,
        vae_tiling=None,
    )
    assert flags == {
        "preset": "fast",
        "quantize": "fp8",
        "offload": "blocks",
        "resident_blocks": 12,
        "attention": "sdpa",
        "compile": False,  # --no-compile is a value, not "unset"
        "loras": [
            {"path": str(tmp_path / "style.safetensors"), "strength": 0.5},  # relative to the working directory
            {"path": str(tmp_path / "plain.safetensors")},
            {"path": str(tmp_path / "odd:name.safetensors")},  # no number after the colon: part of the name
        ],
    }
    assert model_flags(None, preset=None, compile=None) == {}


def test_overrides_replace_defaults_model_and_keep_the_rest(small_project: Path) -> None:
    (small_project.parent / "style.safetensors").write_bytes(b"x")
    screenplay = load_screenplay(small_project)
    changed = apply_model_settings(
        screenplay,
        {
            "preset": "fast",
            "offload": "blocks",
            "resident_blocks": 4,
            "compile": True,
            "loras": [{"path": "style.safetensors", "strength": 0.7}],
        },
    )
    model = changed.defaults.model
    assert (model.preset, model.offload, model.resident_blocks, model.compile) == ("fast", "blocks", 4, True)
    assert model.loras[0].resolved == small_project.parent / "style.safetensors" and model.loras[0].strength == 0.7
    assert model.quantize == screenplay.defaults.model.quantize == "none"
    assert screenplay.defaults.model.preset is None  # the loaded screenplay is not changed
    assert apply_model_settings(screenplay, None) is screenplay
    assert apply_model_settings(screenplay, {"preset": None}) is screenplay
    # leaving block swap drops the block count the screenplay gave for it
    swapped = apply_model_settings(screenplay, {"offload": "blocks", "resident_blocks": 3})
    assert apply_model_settings(swapped, {"offload": "t5"}).defaults.model.resident_blocks is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"quantize": "fp4"}, "model_settings.quantize: Input should be 'none', 'fp8' or 'int8' (got 'fp4')"),
        ({"preset": "turbo"}, "model_settings.preset: Input should be 'fast' or 'hero'"),
        ({"resident_blocks": 3}, "model_settings.resident_blocks: resident_blocks is the block-swap count"),
        ({"steps": 4}, "model_settings.steps: unknown model setting 'steps' (settings: family, variant, preset"),
        ({"loras": [{"path": "../outside.safetensors"}]}, "model_settings.loras: LoRA '../outside.safetensors' is"),
        ({"loras": [{"path": "nope.safetensors"}]}, "model_settings.loras: LoRA file 'nope.safetensors' not found"),
        ({"loras": "x.safetensors"}, "model_settings.loras: expected a list of {path, strength}"),
    ],
)
def test_bad_parameter_values_are_one_clear_error(small_project: Path, overrides: dict, expected: str) -> None:
    with pytest.raises(ModelOverrideError) as caught:
        apply_model_settings(load_screenplay(small_project), overrides)
    assert str(caught.value).startswith(expected), str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--quantize", "fp4"], "error: --quantize: Input should be 'none', 'fp8' or 'int8' (got 'fp4')"),
        (["--offload", "disk"], "error: --offload: Input should be 'none', 't5', 'blocks' or 'sequential'"),
        (["--attention", "xformers"], "error: --attention: Input should be 'auto', 'flash3', 'flash2', 'sage' or"),
        (["--preset", "turbo"], "error: --preset: Input should be 'fast' or 'hero'"),
        (["--family", "wan"], "error: --family: Input should be 'multitalk' or 'infinitetalk'"),
        (["--resident-blocks", "5"], "error: --resident-blocks: resident_blocks is the block-swap count"),
        (["--resident-blocks", "-1", "--offload", "blocks"], "error: --resident-blocks: Input should be greater"),
        (["--lora", "missing.safetensors:0.5"], "error: --lora: LoRA file"),
        (["--lora", "x.safetensors:99"], "error: --lora: Input should be less than or equal to 8"),
    ],
)
@pytest.mark.parametrize("command", ["render", "plan"])
def test_bad_flags_exit_2_with_one_line_naming_the_flag(
    small_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, flags: list[str], expected: str
) -> None:
    monkeypatch.chdir(tmp_path)  # --lora paths are relative to the working directory
    (tmp_path / "x.safetensors").write_bytes(b"x")
    extra = ["-o", str(tmp_path / "outputs"), "-r", "preview"] if command == "render" else []
    result = runner.invoke(app, [command, str(small_project), *extra, *flags])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.output
    assert "Traceback" not in result.output


def test_plan_takes_the_same_flags(small_project: Path) -> None:
    result = runner.invoke(
        app,
        [
            "plan",
            str(small_project),
            "--preset",
            "fast",
            "--offload",
            "blocks",
            "--resident-blocks",
            "8",
            "--model",
            "tiny",
        ],
    )
    assert result.exit_code == 0, result.output


# --- keys: what changes the output changes the chunk keys -------------------------------------------------
@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_tiny_release(tmp_path_factory.mktemp("weights"))
    write_tiny_lora(root / LORAS_DIR / FAST_LORA_FILE)
    return root


def chunk_keys(path: Path, outputs: Path, weights: Path, overrides: dict | None) -> list[str]:
    """The multitalk renderer's chunk keys of the first scene, planned (nothing rendered) after the overrides."""
    screenplay = apply_model_settings(load_screenplay(path), overrides)
    scene = screenplay.scenes[0]
    audio = RenderSettings.resolve(screenplay, renderer="preview", store_root=outputs, devices=["cpu"])
    aligned, _ = voice_and_align(screenplay, None, scene, audio)
    renderer = renderer_for("multitalk", "cpu", weights=str(weights), model="tiny")
    return video_plan(screenplay, scene, aligned, renderer, EncodeSettings()).chunk_keys


def test_output_changing_overrides_change_the_chunk_keys_and_the_others_do_not(
    small_project: Path, tmp_path: Path, weights: Path
) -> None:
    outputs = tmp_path / "outputs"
    (small_project.parent / "style.safetensors").write_bytes((weights / LORAS_DIR / FAST_LORA_FILE).read_bytes())
    base = chunk_keys(small_project, outputs, weights, None)
    assert len(base) >= 2
    same = [
        {"offload": "t5"},
        {"offload": "blocks", "resident_blocks": 2},
        {"offload": "sequential"},
        {"compile": True},
        {"attention": "sdpa"},
        {"preset": "hero"},  # the official recipe is the schema's sampling default: the same frames
    ]
    for overrides in same:
        assert chunk_keys(small_project, outputs, weights, overrides) == base, overrides
    changed = [
        {"preset": "fast"},
        {"quantize": "int8"},
        {"loras": [{"path": "style.safetensors", "strength": 0.5}]},
        {"vae_tiling": True},
        {"attention": "sage"},
    ]
    seen = {tuple(base)}
    for overrides in changed:
        keys = chunk_keys(small_project, outputs, weights, overrides)
        assert all(a != b for a, b in zip(keys, base, strict=True)), overrides
        seen.add(tuple(keys))
    assert len(seen) == len(changed) + 1  # each changes them its own way


def test_the_fan_out_forwards_model_settings_to_scene_runs(small_project: Path, tmp_path: Path) -> None:
    screenplay = load_screenplay(small_project)
    settings = resolve_settings(screenplay, renderer="preview", store_root=str(tmp_path), devices=["cpu"])
    options = {"weights": None, "model": None, "model_settings": {"preset": "fast"}}
    parameters = scene_parameters(screenplay, "cafe", settings, options)
    assert parameters["model_settings"] == {"preset": "fast"}
    assert "model_settings" not in scene_parameters(screenplay, "cafe", settings, {"model_settings": None})


# --- up to date: the CLI pre-check sees the flags ---------------------------------------------------------
def test_the_up_to_date_check_applies_the_flags(small_project: Path, tmp_path: Path) -> None:
    """The preview animatic has no model (its identity and keys carry no model settings), so any flag keeps a
    preview render up to date; a bad flag still fails before the check."""
    import multitalk

    outputs = tmp_path / "outputs"
    manifest = multitalk.render(small_project, outputs=outputs, renderer="preview", model_settings={"offload": "t5"})
    base = ["render", str(small_project), "-o", str(outputs), "-r", "preview"]
    for flags in (["--offload", "t5"], ["--preset", "fast", "--compile"], []):
        result = runner.invoke(app, [*base, *flags])
        assert result.exit_code == 0 and "up to date" in result.output, result.output
        assert manifest["video"] in result.output.replace("\n", "")
    with pytest.raises(ModelOverrideError):
        multitalk.render(small_project, outputs=outputs, renderer="preview", model_settings={"offload": "disk"})


def test_the_flow_rejects_a_bad_parameter_before_any_work(
    prefect_api: str, small_project: Path, tmp_path: Path
) -> None:
    from flows.render_screenplay import render_screenplay

    outputs = tmp_path / "outputs"
    state = render_screenplay(
        str(small_project),
        store_root=str(outputs),
        renderer="preview",
        model_settings={"quantize": "fp4"},
        return_state=True,
    )
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, ModelOverrideError) and str(error).startswith("model_settings.quantize:")
    assert not (outputs / "small_talk").exists()
