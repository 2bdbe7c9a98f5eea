"""Writes sent with the COMMIT: several statements become the CTEs of one, parameters renumbered."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from commands.store.writes_at_commit import combined, inlined


def test_one_write_is_sent_as_it_is() -> None:
    assert combined([("DELETE FROM t WHERE id = $1", (7,))]) == ("DELETE FROM t WHERE id = $1", [7])


def test_several_writes_become_ctes_of_the_last_with_parameters_numbered_after_the_ones_before() -> None:
    statement, args = combined(
        [
            ("UPDATE a SET x = $2 WHERE id = $1", ("a1", 2)),
            ("DELETE FROM b WHERE id = $1", ("b1",)),
            ("UPDATE c SET y = $1, z = $3 WHERE id = $2 AND w = $10", ("c1", "c2", "c3", *range(4, 11))),
        ]
    )
    assert statement == (
        "WITH write_0 AS (UPDATE a SET x = $2 WHERE id = $1), "
        "write_1 AS (DELETE FROM b WHERE id = $3) "
        "UPDATE c SET y = $4, z = $6 WHERE id = $5 AND w = $13"
    )
    assert args == ["a1", 2, "b1", "c1", "c2", "c3", 4, 5, 6, 7, 8, 9, 10]


def test_a_write_whose_parameters_do_not_match_its_arguments_is_refused() -> None:
    with pytest.raises(ValueError, match=r"names \$2 but has 1 arguments"):
        combined([("UPDATE t SET x = $2 WHERE id = $1", ("only-one",))])


def test_a_write_with_a_dollar_inside_a_quoted_literal_is_refused() -> None:
    with pytest.raises(ValueError, match="inside a quoted literal"):
        combined([("UPDATE t SET note = 'costs $1' WHERE id = $1", ("a",))])


def test_arguments_of_plain_types_are_written_in_as_literals() -> None:
    order = uuid.UUID("12345678-1234-5678-1234-567812345678")
    statement = "UPDATE t SET a = $1, b = $2, c = $3, d = $4, e = $5 WHERE id = $6 AND f = $10"
    args = ["it's \\ $2", None, True, 42, "ü", order, 0, 0, 0, "last"]
    assert inlined(statement, args) == (
        "UPDATE t SET a = E'it''s \\\\ $2', b = NULL, c = TRUE, d = (42), e = E'ü' "
        "WHERE id = '12345678-1234-5678-1234-567812345678' AND f = E'last'"
    )


def test_arguments_of_other_types_keep_the_statement_with_its_parameters() -> None:
    for value in (datetime.now(UTC), Decimal("1.5"), ["a"], b"x", "nul\x00"):
        assert inlined("UPDATE t SET a = $1", [value]) is None


def test_a_negative_number_stays_one_after_a_minus_or_before_a_cast() -> None:
    class Level(enum.IntEnum):
        HIGH = 3

    assert inlined("UPDATE t SET n = n -$1 WHERE id = $2", [-5, Level.HIGH]) == (
        "UPDATE t SET n = n -(-5) WHERE id = (3)"
    )
    assert inlined("UPDATE t SET s = $1::text", [-5]) == "UPDATE t SET s = (-5)::text"
