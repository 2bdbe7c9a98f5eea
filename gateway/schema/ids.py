"""Opaque global ids: ``gid://commerce/<Type>/<key>``. Clients never parse them."""

from __future__ import annotations

PREFIX = "gid://commerce/"


def global_id(type_name: str, key: str) -> str:
    return f"{PREFIX}{type_name}/{key}"


def parse_global_id(value: str, expected_type: str | None = None) -> tuple[str, str] | None:
    """(type, key), or None when ``value`` is not one of our ids (or not of ``expected_type``)."""
    if not value.startswith(PREFIX):
        return None
    type_name, _, key = value[len(PREFIX) :].partition("/")
    if not type_name or not key or (expected_type is not None and type_name != expected_type):
        return None
    return type_name, key
