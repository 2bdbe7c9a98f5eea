"""inventorySet / inventoryAdjust commands: rules, idempotency keys, concurrent duplicates."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from commands.errors import DomainError, InvalidInput, NotFound
from commands.messages.inventory import AdjustStock, SetStock, StockResult
from commands.store.idempotency import IdempotencyKeyInProgress, IdempotencyKeyReused
from gateway.bootstrap.container import Container
from tests.support.inventory import META, inventory_events, items, new_order, reserve


async def _run(
    container: Container, command: SetStock | AdjustStock, key: str, actor: str = "admin:a1"
) -> StockResult:
    return await container.bus.dispatch(replace(command, idempotency_key=key), replace(META, actor=actor))


async def test_set_and_adjust_append_events_with_the_numbers_after(stocked: Container) -> None:
    await reserve(stocked, new_order(), [("INV-A", 4)])
    result = await _run(stocked, SetStock("INV-A", 12), "k1")
    assert (result.on_hand, result.reserved, result.available, result.replayed) == (12, 4, 8, False)
    adjusted = await _run(stocked, AdjustStock("INV-A", -8, "shrinkage"), "k2")
    assert (adjusted.on_hand, adjusted.available) == (4, 0)
    assert (
        adjusted.position is not None and result.position is not None and adjusted.position > result.position
    )

    events = [e for e in await inventory_events(stocked) if e.stream_id == "inventory-INV-A"]
    assert [e.type for e in events][-2:] == ["StockSet", "StockAdjusted"]
    assert events[-2].data["previous_on_hand"] == 10
    assert events[-1].data == {
        "sku": "INV-A",
        "product_id": events[-1].data["product_id"],
        "on_hand": 4,
        "reserved": 4,
        "available": 0,
        "delta": -8,
        "reason": "shrinkage",
    }
    assert events[-1].metadata["idempotency_key"] == "k2"
    assert events[-1].position == adjusted.position


async def test_never_below_reserved(stocked: Container) -> None:
    await reserve(stocked, new_order(), [("INV-B", 3)])
    with pytest.raises(InvalidInput) as set_error:
        await _run(stocked, SetStock("INV-B", 2), "k1")
    assert set_error.value.field == ["onHand"]
    with pytest.raises(InvalidInput) as adjust_error:
        await _run(stocked, AdjustStock("INV-B", -3), "k2")
    assert adjust_error.value.field == ["delta"]
    assert (await items(stocked))["INV-B"].on_hand == 5
    # A refused request leaves its key unused.
    assert (await _run(stocked, AdjustStock("INV-B", -2), "k2")).on_hand == 3


@pytest.mark.parametrize(
    ("command", "key", "error", "field"),
    [
        (SetStock("NOPE", 1), "k", NotFound, ["sku"]),
        (AdjustStock("NOPE", 1), "k", NotFound, ["sku"]),
        (SetStock("INV-A", -1), "k", InvalidInput, ["onHand"]),
        (AdjustStock("INV-A", 0), "k", InvalidInput, ["delta"]),
        (AdjustStock("INV-A", 10_000_000), "k", InvalidInput, ["delta"]),
        (AdjustStock("INV-A", 1, "x" * 501), "k", InvalidInput, ["reason"]),
        (SetStock("", 1), "k", InvalidInput, ["sku"]),
        (SetStock("INV-A", 1), "", InvalidInput, ["idempotencyKey"]),
        (SetStock("INV-A", 1), "k" * 256, InvalidInput, ["idempotencyKey"]),
    ],
)
async def test_invalid_requests(
    stocked: Container, command: SetStock | AdjustStock, key: str, error: type[DomainError], field: list[str]
) -> None:
    events = len(await inventory_events(stocked))
    with pytest.raises(error) as caught:
        await _run(stocked, command, key)
    assert caught.value.field == field
    assert len(await inventory_events(stocked)) == events


async def test_same_key_replays_and_other_input_is_refused(stocked: Container) -> None:
    first = await _run(stocked, AdjustStock("INV-C", 3, "count"), "restock-1")
    again = await _run(stocked, AdjustStock("INV-C", 3, "count"), "restock-1")
    assert again.replayed and (again.on_hand, again.position) == (first.on_hand, first.position)
    assert (await items(stocked))["INV-C"].on_hand == 3
    with pytest.raises(IdempotencyKeyReused) as reused:
        await _run(stocked, AdjustStock("INV-C", 4, "count"), "restock-1")
    assert reused.value.field == ["idempotencyKey"]
    # Keys are scoped per caller and per operation.
    assert (await _run(stocked, AdjustStock("INV-C", 4), "restock-1", actor="admin:a2")).on_hand == 7
    assert (await _run(stocked, SetStock("INV-C", 1), "restock-1")).on_hand == 1


async def test_concurrent_duplicates_apply_once(stocked: Container) -> None:
    async def attempt() -> StockResult | DomainError:
        try:
            return await _run(stocked, AdjustStock("INV-A", 5), "dup")
        except IdempotencyKeyInProgress as exc:
            return exc

    outcomes = await asyncio.gather(*(attempt() for _ in range(8)))
    results = [o for o in outcomes if isinstance(o, StockResult)]
    assert results and all(r.on_hand == 15 for r in results)
    assert (await items(stocked))["INV-A"].on_hand == 15
    adjusted = [e for e in await inventory_events(stocked) if e.type == "StockAdjusted"]
    assert len(adjusted) == 1
