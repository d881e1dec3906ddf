"""A real headless Chromium (Debian's `chromium` + `chromium-driver`, driven by Selenium) and a studio server.

Selenium is pointed at the system browser and driver explicitly, so Selenium Manager never looks for (or
downloads) a browser of its own. The studio runs as `multitalk studio FOLDER` in its own process, as a user
starts it.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.flows.servers import REPO, Service, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
STARTUP_SECONDS = 90


def require_browser() -> None:
    """Skip (with how to fix it) where the system browser or Selenium is missing; setup.sh installs both."""
    pytest.importorskip("selenium", reason="pip install selenium (the dev extra)")
    for program in (CHROMIUM, CHROMEDRIVER):
        if not Path(program).exists():
            pytest.skip(f"{program} not found: apt-get install chromium chromium-driver (setup.sh does)")


@contextlib.contextmanager
def chromium(width: int = 1500, height: int = 1150) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=DriverService(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def studio_server(folder: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """`multitalk studio FOLDER --port P` on 127.0.0.1; yields its URL once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "flows.cli", "studio", str(folder), "--port", str(port)]
    server = Service("studio", command, env, log, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            server.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/screenplays", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"the studio did not answer in {STARTUP_SECONDS} s:\n{server.output()}")
            time.sleep(0.3)
        yield url
    finally:
        server.stop()


def wait_for(driver: Any, script: str, timeout: float, *args: Any, what: str = "") -> Any:
    """Poll a JavaScript expression (`return ...`) until it is truthy; its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: d.execute_script(script, *args))
    except Exception as error:
        logs = driver.get_log("browser") if hasattr(driver, "get_log") else []
        state = driver.execute_script(
            "return ['save-state','problems-state','preview-state','run-state','run-chunks','audio-state']"
            ".map(id => id + '=' + (document.getElementById(id)||{}).textContent).join('; ')"
        )
        pytest.fail(
            f"timed out after {timeout} s waiting for {what or script}\npage: {state}\nconsole: {logs}\n{error}"
        )
