"""Log format: a short line for people (a terminal, or LOG_FORMAT=text), JSON for machines."""

from __future__ import annotations

import io
import json
import logging

from gateway.bootstrap.logging import JsonFormatter, TextFormatter, request_id_var, wants_text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _record() -> logging.LogRecord:
    record = logging.LogRecord("gateway.cli", logging.WARNING, __file__, 1, "gateway %s", ("stopping",), None)
    record.url = "http://127.0.0.1:8000/graphql"
    record.reason = "two words"
    return record


def test_text_on_a_terminal_or_when_asked_json_otherwise() -> None:
    assert wants_text(_Terminal(), None)
    assert not wants_text(io.StringIO(), None)
    assert wants_text(io.StringIO(), "text")
    assert not wants_text(_Terminal(), "json")


def test_text_line_carries_level_logger_message_and_fields() -> None:
    token = request_id_var.set("r-1")
    try:
        line = TextFormatter().format(_record())
    finally:
        request_id_var.reset(token)
    assert "\n" not in line and not line.startswith("{")
    assert " WARNING gateway.cli: gateway stopping " in line
    assert "request_id=r-1" in line and "url=http://127.0.0.1:8000/graphql" in line
    assert 'reason="two words"' in line


def test_json_line_keeps_its_fields() -> None:
    entry = json.loads(JsonFormatter().format(_record()))
    assert entry["level"] == "warning" and entry["msg"] == "gateway stopping"
    assert entry["url"] == "http://127.0.0.1:8000/graphql"
