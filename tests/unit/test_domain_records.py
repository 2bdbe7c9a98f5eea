"""``evolved``: the same record ``dataclasses.replace`` would build, for the state classes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from commands.domain.records import evolved


@dataclass(frozen=True)
class _State:
    name: str
    version: int = 0
    tags: tuple[str, ...] = field(default=())


def test_evolved_equals_replace_and_leaves_the_original_alone() -> None:
    before = _State("a", 1, ("x",))
    after = evolved(before, version=2, tags=("y",))
    assert after == dataclasses.replace(before, version=2, tags=("y",))
    assert before == _State("a", 1, ("x",))
    assert type(after) is _State
    with pytest.raises(dataclasses.FrozenInstanceError):
        after.version = 3  # type: ignore[misc]


def test_an_unknown_field_is_refused() -> None:
    with pytest.raises(TypeError, match="no field colour"):
        evolved(_State("a"), colour="red")


def test_classes_it_would_get_wrong_are_refused() -> None:
    @dataclass(frozen=True)
    class Checked:
        amount: int

        def __post_init__(self) -> None:
            if self.amount < 0:
                raise ValueError("negative")

    @dataclass(frozen=True, slots=True)
    class Slotted:
        amount: int

    for record in (Checked(1), Slotted(1)):
        with pytest.raises(TypeError, match="not a plain dataclass"):
            evolved(record, amount=2)
