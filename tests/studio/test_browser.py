"""The studio in a real headless Chromium, as an author uses it, over a copy of the bundled examples.

One studio server (talking to a local Prefect server with the `render-screenplay/local` deployment and a worker)
serves every step; each test opens the page afresh and saves a screenshot of what it checked (in the pytest
temporary folder, or `STUDIO_SCREENSHOTS` when set).
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from multitalk.screenplay.load import load_screenplay_with_source
from multitalk.store.store import Store
from studio.hearing import hear_scene
from tests.flows.servers import prefect, prefect_server, prefect_worker
from tests.studio.browser import chromium, require_browser, studio_server, wait_for
from tests.studio.conftest import EXAMPLES

pytestmark = pytest.mark.slow

PREVIEW_SCENE = "bus-stop"
POOL_SCENE = "park"  # not previewed before: the worker renders its chunks (a cached clip would run none)
RUN_TIMEOUT = 420


class Studio:
    """The running studio, its folder, a browser, and where screenshots go."""

    def __init__(self, url: str, folder: Path, driver: Any, shots: Path):
        self.url, self.folder, self.driver, self.shots = url, folder, driver, shots

    def open(self, file: str = "two_friends.yaml") -> Any:
        self.driver.get(f"{self.url}/?file={file}")
        wait_for(self.driver, "return document.getElementById('problems-state').textContent === 'no problems'", 60)
        wait_for(self.driver, "return document.querySelectorAll('#boxes .box').length > 0", 60, what="cast boxes")
        return self.driver

    def shot(self, name: str, element_id: str) -> Path:
        """A screenshot with the element the step checked in the middle of the window."""
        self.js("document.getElementById(arguments[0]).scrollIntoView({block: 'center'})", element_id)
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        assert path.stat().st_size > 10_000
        return path

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    require_browser()
    base = tmp_path_factory.mktemp("studio")
    folder = base / "films"
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shots = Path(os.environ.get("STUDIO_SCREENSHOTS") or base / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with prefect_server(base / "prefect") as (_, env):
        prefect("work-pool", "create", "cpu", "--type", "process", env=env)
        prefect("deploy", "--name", "local", env=env)
        with (
            prefect_worker("cpu", "studio-cpu", env, base) as worker,
            studio_server(folder, env, base / "studio.log") as url,
            chromium() as driver,
        ):
            yield Studio(url, folder, driver, shots)
            worker.check_alive()
    print(f"studio screenshots: {shots}")


def select_text(studio: Studio, before: str, word: str) -> None:
    """Put the editor's selection on `word`, found just after `before`, as a user double-clicking it would."""
    studio.js(
        "const e = document.getElementById('editor'); const at = e.value.indexOf(arguments[0]) + arguments[0].length;"
        "e.focus(); e.setSelectionRange(at, at + arguments[1].length);",
        before,
        word,
    )


def test_a_typo_shows_the_located_message_and_the_fix_clears_it(studio: Studio, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    driver = studio.open()
    original = (studio.folder / "two_friends.yaml").read_text()
    select_text(studio, "  mia:\n    ", "voice")
    ActionChains(driver).send_keys("vocie").perform()
    wait_for(driver, "return document.querySelectorAll('#problems li').length > 0", 30, what="a problem")
    shown = studio.js("return [...document.querySelectorAll('#problems li')].map(li => li.textContent)")
    # The same words `multitalk validate` prints for that text, run from the folder.
    check = tmp_path / "check"
    shutil.copytree(studio.folder, check, ignore=shutil.ignore_patterns("outputs"))
    (check / "two_friends.yaml").write_text(original.replace("  mia:\n    voice:", "  mia:\n    vocie:"))
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "validate", "two_friends.yaml"],
        cwd=check,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown == done.stdout.strip().splitlines()
    assert shown[0].startswith("two_friends.yaml:18:5: characters.mia.vocie:")
    studio.js("document.querySelector('#problems li').click()")  # jumps to the place
    assert (
        studio.js("const e = document.getElementById('editor'); return e.value.substr(e.selectionStart, 5)") == "vocie"
    )
    studio.shot("1-typo-located", "problems")
    select_text(studio, "  mia:\n    ", "vocie")
    ActionChains(driver).send_keys("voice").perform()
    wait_for(driver, "return document.getElementById('problems-state').textContent === 'no problems'", 30)
    assert studio.js("return document.getElementById('editor').value") == original
    assert (studio.folder / "two_friends.yaml").read_text() == original  # typing alone never writes the file
    studio.shot("2-typo-fixed", "problems-state")


def test_dragging_a_box_rewrites_the_cast_on_disk_with_comments_kept(studio: Studio) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = studio.open()
    path = studio.folder / "two_friends.yaml"
    original = path.read_text()
    Select(driver.find_element(By.ID, "scene-select")).select_by_value("park")
    wait_for(driver, "return document.getElementById('scene-image').src.includes('park_bench')", 30)
    wait_for(driver, "return document.querySelector('.box[data-name=jonah]') !== null", 30)
    scale = studio.js("return document.getElementById('scene-image').clientWidth / 832")
    box = driver.find_element(By.CSS_SELECTOR, ".box[data-name=jonah]")
    ActionChains(driver).click_and_hold(box).move_by_offset(40, 10).move_by_offset(40, 10).release().perform()
    wait_for(driver, "return document.getElementById('save-state').textContent.startsWith('saved: jonah')", 30)
    edited = path.read_text()
    changed = [line for line in difflib.ndiff(original.splitlines(), edited.splitlines()) if line[:1] in "+-"]
    assert len(changed) == 2 and changed[0] == "-       jonah: {bbox: [498, 157, 672, 480]}", changed
    x0, _, x1, y1 = (int(v) for v in re.findall(r"\d+", changed[1]))
    assert abs(x0 - (498 + 80 / scale)) <= 2 and x1 - x0 == 174 and y1 == 480  # clamped at the image's bottom
    assert [line for line in original.splitlines() if "#" in line] == [
        line for line in edited.splitlines() if "#" in line
    ]
    assert studio.js("return document.getElementById('editor').value") == edited
    studio.shot("3-box-dragged", "cast-stage")

    # Draw a new box for Mia in the empty sky above the bench: her placement becomes that box.
    Select(driver.find_element(By.ID, "draw-character")).select_by_value("mia")
    image = driver.find_element(By.ID, "scene-image")
    width, height = studio.js(
        "const i = document.getElementById('scene-image'); return [i.clientWidth, i.clientHeight]"
    )

    def offset(x: float, y: float) -> tuple[int, int]:  # image pixels -> offset from the element's centre
        return round(x * scale - width / 2), round(y * scale - height / 2)

    ActionChains(driver).move_to_element_with_offset(
        image, *offset(40, 20)
    ).click_and_hold().move_to_element_with_offset(image, *offset(150, 80)).move_to_element_with_offset(
        image, *offset(250, 140)
    ).release().perform()
    wait_for(driver, "return document.getElementById('save-state').textContent.startsWith('saved: mia')", 30)
    drawn = re.search(r"mia: \{bbox: \[(\d+), (\d+), (\d+), (\d+)\]\}", path.read_text().split("id: park")[1])
    assert drawn is not None
    assert all(abs(int(v) - want) <= 2 for v, want in zip(drawn.groups(), (40, 20, 250, 140), strict=True))
    studio.shot("3b-box-drawn", "cast-stage")


def test_a_line_plays_and_the_scene_timeline_has_lanes_by_position(studio: Studio) -> None:
    driver = studio.open()
    studio.js("document.querySelector('#lines button.hear[data-line=\"1\"]').click()")
    duration = wait_for(
        driver,
        "const a = document.getElementById('line-audio');"
        "return a.src.includes('line.wav') && a.duration > 0 && a.currentTime > 0 ? a.duration : null",
        60,
        what="the line to play",
    )
    assert 1.0 < duration < 10.0
    studio.shot("4-line-playing", "lines")
    studio.js("document.getElementById('hear-scene').click()")
    wait_for(driver, "return document.querySelectorAll('#timeline rect.timeline-line').length === 11", 90)
    lanes = studio.js("return [...document.querySelectorAll('#timeline svg text')].map(t => t.textContent)")
    assert "Mia · left" in lanes and "Jonah · right" in lanes
    mix = wait_for(
        driver, "const a = document.getElementById('line-audio'); return a.src.includes('mix') && a.duration", 30
    )
    assert mix > 25
    studio.shot("5-scene-timeline", "timeline")


def test_a_scene_preview_renders_with_progress_and_plays(studio: Studio) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = studio.open()
    Select(driver.find_element(By.ID, "preview-scope")).select_by_value(PREVIEW_SCENE)
    studio.js("document.getElementById('preview-start').click()")
    wait_for(driver, "return document.getElementById('preview-state').textContent.includes('chunks')", 120)
    duration = wait_for(
        driver,
        "const v = document.getElementById('preview-video'); return v.readyState >= 1 && v.duration",
        RUN_TIMEOUT,
        what="the preview video",
    )
    screenplay, source = load_screenplay_with_source(studio.folder / "two_friends.yaml")
    _, timeline = hear_scene(Store(studio.folder / "outputs"), screenplay, source, screenplay.scene(PREVIEW_SCENE))
    assert abs(duration - timeline["duration"]) < 0.05, (duration, timeline["duration"])
    assert studio.js("return document.getElementById('preview-progress').value") == 1
    studio.js("document.getElementById('preview-video').play()")
    wait_for(driver, "return document.getElementById('preview-video').currentTime > 0.5", 30, what="the video to play")
    played = parse_qs(urlparse(studio.js("return document.getElementById('preview-video').src")).query)["path"][0]
    assert played.startswith("outputs/cache/clip/") and (studio.folder / played).is_file()  # the scene's clip
    studio.shot("6-preview-playing", "preview-video")


def test_sending_to_the_pool_runs_the_deployment_and_shows_its_report(studio: Studio) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = studio.open()
    wait_for(driver, "return document.getElementById('pool-status').textContent.includes('Prefect API http')", 30)
    Select(driver.find_element(By.ID, "deployment")).select_by_value("render-screenplay/local")
    Select(driver.find_element(By.ID, "renderer")).select_by_value("preview")
    driver.find_element(By.ID, "pool-scenes").send_keys(POOL_SCENE)
    studio.js("document.getElementById('plan').click()")
    plan = wait_for(
        driver, "const t = document.getElementById('plan-text').textContent; return t !== 'estimating…' && t", 90
    )
    assert plan.strip()
    studio.js("document.getElementById('submit').click()")
    ended = wait_for(
        driver,
        "const s = document.getElementById('run-state'); const done = s.dataset.state === 'Completed'"
        " && document.getElementById('run-report').textContent.length > 0;"
        "return done ? 'Completed' : /Error|Failed|Crashed|Cancelled/.test(s.textContent) && s.textContent",
        RUN_TIMEOUT,
        what="the deployment run to complete with its report",
    )
    assert ended == "Completed", ended
    chunks = studio.js("return document.getElementById('run-chunks').textContent")
    done = int(re.search(r"chunks done: (\d+)", chunks).group(1))
    report = studio.js("return document.getElementById('run-report').textContent")
    assert done > 0 and "# Two Friends" in report and f"| {POOL_SCENE} |" in report
    assert (studio.folder / "outputs" / "two_friends" / "scenes" / f"{POOL_SCENE}.mp4").is_file()
    studio.shot("7-pool-run-report", "run-report")


def test_the_page_cannot_fetch_outside_its_folder(studio: Studio) -> None:
    (studio.folder.parent / "secret.png").write_bytes(b"\x89PNG TOP-SECRET")
    link = studio.folder / "assets" / "link.png"
    link.symlink_to(studio.folder.parent / "secret.png")
    studio.open()
    fetch = (
        "const done = arguments[arguments.length - 1];"
        "Promise.all(arguments[0].map(p => fetch('/api/file?path=' + encodeURIComponent(p))"
        ".then(async r => [r.status, await r.text()]))).then(done);"
    )
    answers = studio.driver.execute_async_script(fetch, ["../secret.png", "/etc/passwd", "assets/link.png"])
    assert [status for status, _ in answers] == [403, 403, 403]
    assert not any("TOP-SECRET" in body or "root:" in body for _, body in answers)
