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
    assert not gate._rows  # forgotten once idle


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
    assert most == 16 and not gate._rows


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
    assert not gate._rows


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
    assert not gate._rows


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
    assert len(entered) == 20 and not gate._rows


async def test_an_error_in_the_body_gives_the_places_back() -> None:
    gate = StockRowGate(1)
    with pytest.raises(RuntimeError):
        async with gate.admitted({"A": 1, "B": 1}):
            raise RuntimeError("out of stock")
    assert not gate._rows
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
    assert most == 10 and not gate._rows
    with pytest.raises(ValueError):
        StockRowGate(-1)
