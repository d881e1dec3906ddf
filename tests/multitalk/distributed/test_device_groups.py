"""Device slots: `+` groups, --gpus-per-scene, canonical names, and the clear errors a user sees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from multitalk.devices import DevicePool
from multitalk.distributed.device_groups import DeviceGroup, DeviceSpecError, canonical_device, device_groups
from multitalk.screenplay.load import load_screenplay
from multitalk.stages.settings import RenderSettings

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "scripts_yaml" / "two_friends.yaml"


def test_device_names_are_canonical():
    assert canonical_device("cuda") == "cuda:0" and canonical_device("CUDA:3") == "cuda:3"
    assert canonical_device("cuda:01") == "cuda:1"
    assert canonical_device("cpu:0") == "cpu" and canonical_device("cpu:2") == "cpu:2"
    assert canonical_device("cpu:a") == "cpu:a"  # CPU pseudo-devices may carry any label
    with pytest.raises(DeviceSpecError, match="'gpu0' is not a device name: use cuda, cuda:N"):
        canonical_device("gpu0")


def test_groups_and_gpus_per_scene():
    assert DeviceGroup.parse("cuda+cuda:1").name == "cuda:0+cuda:1"
    assert [g.name for g in device_groups(["cuda:0+cuda:1", "cuda:2"])] == ["cuda:0+cuda:1", "cuda:2"]
    names = [g.name for g in device_groups([f"cuda:{i}" for i in range(8)], gpus_per_scene=4)]
    assert names == ["cuda:0+cuda:1+cuda:2+cuda:3", "cuda:4+cuda:5+cuda:6+cuda:7"]
    assert [g.name for g in device_groups(["cuda:0,cuda:1"], gpus_per_scene=2)] == ["cuda:0+cuda:1"]
    assert [g.name for g in device_groups(["cuda:0+cuda:1", "cuda:2", "cuda:3"], 2)] == [
        "cuda:0+cuda:1",
        "cuda:2+cuda:3",
    ]


@pytest.mark.parametrize(
    ("specs", "per_scene", "message"),
    [
        (["cuda", "cuda:0+cuda:1"], None, r"device cuda:0 is in two slots \(cuda:0 and cuda:0\+cuda:1\)"),
        (["cuda:0", "cuda:1", "cuda:2"], 4, "needs a multiple of 4 devices, got 3"),
        (["cpu+cuda:0"], None, "mixes CPU and CUDA"),
        (["cuda:0+"], None, "empty member"),
        (["cuda:1+cuda:1"], None, "names a device twice"),
        (["cuda:0"], 0, "must be a positive integer"),
    ],
)
def test_bad_device_layouts_are_clear_errors(specs, per_scene, message):
    with pytest.raises(DeviceSpecError, match=message):
        device_groups(specs, per_scene)


def test_the_pool_and_the_settings_hold_canonical_slots():
    assert DevicePool(["cuda", "cuda:1+cuda:2"]).devices == ("cuda:0", "cuda:1+cuda:2")
    with pytest.raises(DeviceSpecError, match="two slots"):
        DevicePool(["cuda", "cuda:0"])
    screenplay = load_screenplay(EXAMPLE)
    settings = RenderSettings.resolve(
        screenplay, renderer="preview", devices=["cpu:1", "cpu:2", "cpu:3", "cpu:4"], gpus_per_scene=2
    )
    assert settings.devices == ("cpu:1+cpu:2", "cpu:3+cpu:4")


def test_the_cli_reports_a_device_named_twice_in_one_line(tmp_path):
    command = [
        sys.executable, "-m", "flows.cli", "render", str(EXAMPLE), "--renderer", "preview",
        "--outputs", str(tmp_path), "--device", "cuda", "--device", "cuda:0",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "device cuda:0 is in two slots (cuda:0 and cuda:0)" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
