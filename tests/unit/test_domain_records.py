"""``evolved``: the same record ``dataclasses.replace`` would build, for the state classes."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

import pytest

from commands.domain import cart as cart_domain
from commands.domain import order as order_domain
from commands.domain.records import evolved
from commands.events import cart as cart_events
from commands.events import order as order_events
from tests.unit.event_samples import SAMPLES


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

    @dataclass(frozen=True)
    class Derived:
        amount: int
        doubled: int = field(init=False, default=0)

    @dataclass(frozen=True)
    class Cached:
        amount: int

        @functools.cached_property
        def doubled(self) -> int:
            return 2 * self.amount

    for record in (Checked(1), Slotted(1), Derived(1), Cached(1)):
        with pytest.raises(TypeError, match="not a plain dataclass"):
            evolved(record, amount=2)


def test_the_folded_state_records_evolve_as_replace_would() -> None:
    # Every sample event of each stream folded, the creating one first (the base class of the
    # order events is a sample too, and no event of its own).
    orders = [
        e
        for e in SAMPLES
        if isinstance(e, order_events.OrderEvent) and type(e) is not order_events.OrderEvent
    ]
    carts = [e for e in SAMPLES if type(e).__module__ == cart_events.__name__]
    order = order_domain.fold(sorted(orders, key=lambda e: not isinstance(e, order_events.OrderPlaced)))
    cart = cart_domain.fold(sorted(carts, key=lambda e: not isinstance(e, cart_events.CartCreated)))
    assert order is not None and order.version == len(orders) and cart.version == len(carts)
    for record in (order, cart):
        for one in dataclasses.fields(record):
            value = getattr(record, one.name)
            assert evolved(record, **{one.name: value}) == dataclasses.replace(record, **{one.name: value})
        assert evolved(record, version=99) == dataclasses.replace(record, version=99)
