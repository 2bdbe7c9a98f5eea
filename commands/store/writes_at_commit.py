"""Writes a transaction sends together, as one statement, just before its COMMIT.

A unit of work's writes whose result nothing in the transaction reads back (a row bumped, a
claim row deleted, the idempotency key's outcome) need not each cost a round trip, and on a
busy event loop each round trip is a wait for the loop as well as for PostgreSQL. They are
kept until the commit and sent as data-modifying CTEs of one statement: PostgreSQL runs every
one of them exactly once, to completion, whether or not the statement reads their output.

What may be written this way (``UnitOfWork.write_at_commit``): a plain INSERT, UPDATE or DELETE
with numbered parameters (``$1``...) and no dollar-quoted text, whose result and row count are
not needed, that no later statement of the transaction reads, and that takes no lock another
transaction could be waiting to take in a different order. Two of them must not change the same
row: the CTEs of one statement all see the snapshot it started with, and only one change of a
row would land.

When every argument is of a type written safely as an SQL literal (``inlined``), the statement
goes with the COMMIT in one simple query, which takes no parameters: one round trip for both.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from commands.store.literals import of as literals_of

_PARAMETER = re.compile(r"\$(\d+)")


def combined(writes: Sequence[tuple[str, Sequence[Any]]]) -> tuple[str, list[Any]]:
    """One statement and its arguments for ``writes`` (each a statement and its arguments)."""
    statement = _combined(tuple((sql, len(args)) for sql, args in writes))
    return statement, [arg for _, args in writes for arg in args]


@functools.lru_cache(maxsize=64)
def _combined(statements: tuple[tuple[str, int], ...]) -> str:
    """The statements' parameters renumbered after those of the statements before them; all
    but the last as CTEs of the last (cached: a hot path sends the same few combinations)."""
    parts: list[str] = []
    offset = 0
    for sql, count in statements:
        _check(sql, count)
        parts.append(_PARAMETER.sub(functools.partial(_shifted, offset), sql) if offset else sql)
        offset += count
    if len(parts) == 1:
        return parts[0]
    ctes = ", ".join(f"write_{i} AS ({part})" for i, part in enumerate(parts[:-1]))
    return f"WITH {ctes} {parts[-1]}"


def _shifted(offset: int, match: re.Match[str]) -> str:
    return f"${int(match.group(1)) + offset}"


_QUOTED_DOLLAR = re.compile(r"'[^']*\$[^']*'")


def _check(sql: str, count: int) -> None:
    """Refuse what renumbering would get wrong, once per statement text (callers are cached)."""
    numbers = [int(n) for n in _PARAMETER.findall(sql)]
    if max(numbers, default=0) != count:
        raise ValueError(
            f"a write at commit names ${max(numbers, default=0)} but has {count} arguments: {sql}"
        )
    if _QUOTED_DOLLAR.search(sql):
        raise ValueError(f"a write at commit has a $ inside a quoted literal: {sql}")


def inlined(statement: str, args: Sequence[Any]) -> str | None:
    """``statement`` with its arguments written in as literals; None when one of them is of a
    type not written that way (the statement then goes with its parameters, on its own)."""
    literals = [literals_of(arg) for arg in args]
    if any(literal is None for literal in literals):
        return None
    return _PARAMETER.sub(lambda match: str(literals[int(match.group(1)) - 1]), statement)
