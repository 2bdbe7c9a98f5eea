"""A one-shot command that refused part of its input prints its report and exits 1."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from gateway.bootstrap.settings import Settings
from gateway.cli import main as cli
from gateway.cli.outcome import PartlyRefused


def _ending(outcome: str | PartlyRefused) -> Callable[..., Callable[[], Coroutine[Any, Any, str]]]:
    def one_shot(args: argparse.Namespace, settings: Settings) -> Callable[[], Coroutine[Any, Any, str]]:
        async def run() -> str:
            if isinstance(outcome, PartlyRefused):
                raise outcome
            return outcome

        return run

    return one_shot


def test_a_partly_refused_command_prints_its_report_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_one_shot", _ending(PartlyRefused("2 imported; 1 lines refused\nline 3: bad")))
    assert cli.main(["migrate"]) == 1
    out = capsys.readouterr().out
    assert out == "2 imported; 1 lines refused\nline 3: bad\n"


def test_a_command_that_refused_nothing_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_one_shot", _ending("3 imported; 0 lines refused"))
    assert cli.main(["migrate"]) == 0
    assert capsys.readouterr().out == "3 imported; 0 lines refused\n"
