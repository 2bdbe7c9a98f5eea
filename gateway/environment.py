"""Typed reads of environment variables, shared by the process and edge settings.

Every error names the variable, so a misconfigured deployment says what to fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

N = TypeVar("N", int, float)

_TRUE_WORDS = frozenset({"1", "true", "yes"})
_FALSE_WORDS = frozenset({"0", "false", "no"})


class ConfigurationError(Exception):
    """The environment does not describe a runnable configuration."""


class InvalidVariable(ConfigurationError, ValueError):
    """One environment variable holds a value of the wrong kind."""


@dataclass(frozen=True)
class EnvReader:
    values: Mapping[str, str]

    def text(self, name: str, default: str) -> str:
        return self.values.get(name, default)

    def optional(self, name: str) -> str | None:
        """The value, or ``None`` when the variable is unset or empty."""
        return self.values.get(name) or None

    def flag(self, name: str, default: bool) -> bool:
        """``default`` unless the value is one of the words for the other answer (1/true/yes, 0/false/no)."""
        raw = self.values.get(name, "")
        if default:
            return raw not in _FALSE_WORDS
        return raw in _TRUE_WORDS

    def integer(self, name: str, default: int, *, non_negative: bool = False) -> int:
        return self._number(name, default, int, non_negative)

    def real(self, name: str, default: float, *, non_negative: bool = False) -> float:
        return self._number(name, default, float, non_negative)

    def seconds(self, name: str, default: float, *, zero_allowed: bool = False) -> float:
        """A duration: a finite number of seconds above zero (or zero, when that means 'at once')."""
        value = self._number(name, default, float, False)  # finite already
        if value < 0 or (value == 0 and not zero_allowed):
            bound = "0 or more" if zero_allowed else "more than 0"
            raise InvalidVariable(f"{name} must be a finite number of seconds, {bound}, not {value!r}")
        return value

    def _number(self, name: str, default: N, kind: Callable[[str], N], non_negative: bool) -> N:
        """``default`` when unset or blank."""
        raw = self.values.get(name, "").strip()
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise InvalidVariable(f"{name} must be {what}, not {raw!r}") from None
        if not math.isfinite(value):
            raise InvalidVariable(f"{name} must be a finite number, not {raw!r}")
        if non_negative and value < 0:
            raise InvalidVariable(f"{name} must not be negative")
        return value
