"""A CLI render on the project's own server sends no flow-run heartbeats, unless the user asks for them."""

from __future__ import annotations

import pytest
from prefect.settings import get_current_settings

from flows.prefect_env import command_heartbeats


def frequency() -> int | None:
    return get_current_settings().flows.heartbeat_frequency


def test_no_heartbeats_on_our_own_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", raising=False)
    monkeypatch.delenv("PREFECT_RUNNER_HEARTBEAT_FREQUENCY", raising=False)
    before = frequency()
    with command_heartbeats(own_server=True):
        assert frequency() is None
    assert frequency() == before == 180  # Prefect's default, back once the render is done


def test_heartbeats_kept_on_a_team_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", raising=False)
    with command_heartbeats(own_server=False):
        assert frequency() == 180


def test_heartbeats_kept_when_the_user_sets_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "60")  # read by a fresh process's settings
    with command_heartbeats(own_server=True):
        assert frequency() is not None  # left as Prefect reads it
