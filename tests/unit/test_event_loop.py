"""The event loop our processes run on (``gateway.bootstrap.event_loop``)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from gateway.bootstrap import event_loop
from gateway.environment import ConfigurationError


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_processes_run_on_uvloop_unless_asked_for_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENT_LOOP", raising=False)
    assert isinstance(event_loop.run(_running_loop()), uvloop.Loop)
    monkeypatch.setenv("EVENT_LOOP", " asyncio ")
    assert not isinstance(event_loop.run(_running_loop()), uvloop.Loop)
    monkeypatch.setenv("EVENT_LOOP", "UVLOOP")
    assert isinstance(event_loop.run(_running_loop()), uvloop.Loop)


def test_an_unknown_loop_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_LOOP", "trio")
    with pytest.raises(ConfigurationError, match="EVENT_LOOP must be 'uvloop' or 'asyncio', not 'trio'"):
        event_loop.loop_factory()
