"""The stock rows' gate: a few places per row, handed on in arrival order, never leaked."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from commands.inventory.row_gate import StockRowGate


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_admits_per_row_times_rows_and_queues_the_rest_in_arrival_order() -> None:
    gate = StockRowGate(2)
    admitted: list[int] = []
    release = {i: asyncio.Event() for i in range(5)}

    async def checkout(i: int, rows: int = 1) -> None:
        async with gate.admitted({"HOT": rows}):
            admitted.append(i)
            await release[i].wait()

    tasks = [asyncio.create_task(checkout(i)) for i in range(5)]
    await _settle()
    assert admitted == [0, 1]
    assert (gate.holding("HOT"), gate.waiting("HOT")) == (2, 3)
    release[1].set()
    await _settle()
    assert admitted == [0, 1, 2]  # the longest waiter, not whoever asks next
    late = asyncio.create_task(checkout(9))
    release[0].set()
    await _settle()
    assert admitted == [0, 1, 2, 3]
    for i in (2, 3, 4):
        release[i].set()
    release[9] = asyncio.Event()
    release[9].set()
    await asyncio.gather(*tasks, late)
    assert admitted == [0, 1, 2, 3, 4, 9]
    assert (gate.holding("HOT"), gate.waiting("HOT")) == (0, 0)
    assert gate.tracked() == 0  # forgotten once idle


async def test_a_sku_in_buckets_admits_per_row_for_each_bucket() -> None:
    gate = StockRowGate(2)
    inside = 0
    most = 0
    release = asyncio.Event()

    async def checkout() -> None:
        nonlocal inside, most
        async with gate.admitted({"HOT": 8}):
            inside += 1
            most = max(most, inside)
            await release.wait()
            inside -= 1

    tasks = [asyncio.create_task(checkout()) for _ in range(40)]
    await _settle()
    assert most == 16 and gate.waiting("HOT") == 24
    release.set()
    await asyncio.gather(*tasks)
    assert most == 16 and gate.tracked() == 0


async def test_cancelled_while_waiting_leaves_the_queue() -> None:
    gate = StockRowGate(1)
    release = asyncio.Event()
    order: list[str] = []

    async def checkout(name: str) -> None:
        async with gate.admitted({"HOT": 1}):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(checkout("first"))
    await _settle()
    quitter = asyncio.create_task(checkout("quitter"))
    patient = asyncio.create_task(checkout("patient"))
    await _settle()
    quitter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await quitter
    assert gate.waiting("HOT") == 1
    release.set()
    await asyncio.gather(first, patient)
    assert order == ["first", "patient"]
    assert gate.tracked() == 0


async def test_a_place_handed_to_a_cancelled_waiter_is_handed_on() -> None:
    gate = StockRowGate(1)
    order: list[str] = []

    async def checkout(name: str) -> None:
        async with gate.admitted({"HOT": 1}):
            order.append(name)

    async with gate.admitted({"HOT": 1}):
        unlucky = asyncio.create_task(checkout("unlucky"))
        patient = asyncio.create_task(checkout("patient"))
        await _settle()
        assert gate.waiting("HOT") == 2
    # Leaving handed the place to ``unlucky``; it is cancelled before it wakes to take it.
    unlucky.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await unlucky
    await asyncio.wait_for(patient, timeout=5)
    assert order == ["patient"]
    assert gate.tracked() == 0


async def test_several_skus_are_entered_in_sku_order_so_two_carts_cannot_deadlock() -> None:
    gate = StockRowGate(1)
    entered: list[tuple[str, ...]] = []

    async def checkout(skus: tuple[str, ...]) -> None:
        async with gate.admitted(dict.fromkeys(skus, 1)):
            entered.append(skus)
            await asyncio.sleep(0)

    # Listed in opposite orders: entered in one (SKU) order, so neither holds what the other wants.
    await asyncio.wait_for(
        asyncio.gather(*(checkout(("A", "B") if i % 2 else ("B", "A")) for i in range(20))), timeout=5
    )
    assert len(entered) == 20 and gate.tracked() == 0


async def test_an_error_in_the_body_gives_the_places_back() -> None:
    gate = StockRowGate(1)
    with pytest.raises(RuntimeError):
        async with gate.admitted({"A": 1, "B": 1}):
            raise RuntimeError("out of stock")
    assert gate.tracked() == 0
    async with gate.admitted({"A": 1}):
        assert gate.holding("A") == 1


async def test_zero_admits_everyone() -> None:
    gate = StockRowGate(0)
    inside = most = 0

    async def checkout() -> None:
        nonlocal inside, most
        async with gate.admitted({"HOT": 1}):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(checkout() for _ in range(10)))
    assert most == 10 and gate.tracked() == 0
    with pytest.raises(ValueError):
        StockRowGate(-1)


async def test_a_waiter_cancelled_as_the_last_holder_leaves_corrupts_nothing() -> None:
    """The cancelled waiter's task resumes after the SKU's entry was emptied and forgotten, and
    after a newcomer made a new one: it must not remove the newcomer's, nor let anyone past."""
    gate = StockRowGate(1)
    inside: list[str] = []
    release = asyncio.Event()

    async def checkout(name: str) -> None:
        async with gate.admitted({"HOT": 1}):
            inside.append(name)
            await release.wait()
            inside.remove(name)

    async with gate.admitted({"HOT": 1}):
        quitter = asyncio.create_task(checkout("quitter"))
        await _settle()
        quitter.cancel()  # its future is cancelled now; its task runs later
    # Left in the same turn: the entry is emptied and forgotten before the quitter resumes.
    newcomer = asyncio.create_task(checkout("newcomer"))
    second = asyncio.create_task(checkout("second"))
    with contextlib.suppress(asyncio.CancelledError):
        await quitter
    await _settle()
    assert quitter.cancelled()
    assert inside == ["newcomer"], "one place, one checkout inside"
    assert (gate.holding("HOT"), gate.waiting("HOT")) == (1, 1)
    release.set()
    await asyncio.wait_for(asyncio.gather(newcomer, second), timeout=5)
    assert gate.tracked() == 0


async def test_places_follow_the_rows_a_sku_has_now() -> None:
    """Spread over 8 buckets mid-sale, the SKU admits 8 times as many at once, queue or not;
    gathered back to one row, it admits as few again as places are given back."""
    gate = StockRowGate(2)
    inside = most = 0
    release = asyncio.Event()

    async def checkout(rows: int) -> None:
        nonlocal inside, most
        async with gate.admitted({"HOT": rows}):
            inside += 1
            most = max(most, inside)
            await release.wait()
            inside -= 1

    one_row = [asyncio.create_task(checkout(1)) for _ in range(10)]
    await _settle()
    assert (inside, gate.waiting("HOT")) == (2, 8)
    spread = [asyncio.create_task(checkout(8)) for _ in range(20)]
    await _settle()
    assert inside == 16 and gate.waiting("HOT") == 14
    gathered = asyncio.create_task(checkout(1))
    await _settle()
    release.set()
    await asyncio.wait_for(asyncio.gather(*one_row, *spread, gathered), timeout=5)
    assert most == 16 and gate.tracked() == 0


async def test_gathered_back_to_one_row_no_place_is_given_on_past_the_new_limit() -> None:
    gate = StockRowGate(1)
    release_spread, release_gathered = asyncio.Event(), asyncio.Event()
    inside = 0

    async def checkout(rows: int, release: asyncio.Event) -> None:
        nonlocal inside
        async with gate.admitted({"HOT": rows}):
            inside += 1
            await release.wait()
            inside -= 1

    spread = [asyncio.create_task(checkout(4, release_spread)) for _ in range(4)]
    await _settle()
    assert inside == 4
    gathered = [asyncio.create_task(checkout(1, release_gathered)) for _ in range(3)]
    await _settle()
    assert gate.waiting("HOT") == 3
    release_spread.set()
    await asyncio.gather(*spread)
    await _settle()
    # The four places of the spread SKU were given back; one row now has one place.
    assert (inside, gate.holding("HOT"), gate.waiting("HOT")) == (1, 1, 2)
    release_gathered.set()
    await asyncio.wait_for(asyncio.gather(*gathered), timeout=5)
    assert gate.tracked() == 0
