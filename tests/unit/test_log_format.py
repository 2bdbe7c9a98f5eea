"""Log format: a short line for people (a terminal, or LOG_FORMAT=text), JSON for machines."""

from __future__ import annotations

import io
import json
import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal

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


def test_json_line_writes_any_value_a_field_holds() -> None:
    record = _record()
    record.at = datetime(2026, 12, 2, 16, 40, tzinfo=UTC)
    record.amount = Decimal("12.50")
    record.order = uuid.UUID(int=7)
    record.owner = object()
    record.by_pair = {("a", 1): "tuple keys"}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["at"].startswith("2026-12-02") and entry["amount"] == "12.50"
    assert entry["order"] == str(uuid.UUID(int=7))
    assert entry["owner"].startswith("<object object at")
    assert list(entry["by_pair"].values()) == ["tuple keys"]
    # Fields keep the order they were given in.
    assert list(entry)[-5:] == ["at", "amount", "order", "owner", "by_pair"]
