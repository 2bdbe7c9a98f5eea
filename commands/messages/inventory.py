"""Inventory admin commands. Each returns a StockResult."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from commands.bus import Command
from commands.store.unit_of_work import MessageMetadata

__all__ = ["AdjustStock", "SetStock", "SetStockBuckets", "StockResult"]


@dataclass(frozen=True)
class StockResult:
    sku: str
    on_hand: int
    reserved: int
    available: int
    # Ledger position of the inventory event this command appended.
    position: int | None
    # True when an earlier request with the same idempotency key produced it.
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "on_hand": self.on_hand,
            "reserved": self.reserved,
            "available": self.available,
            "position": self.position,
        }

    @classmethod
    def from_response(cls, response: dict[str, Any]) -> StockResult:
        position = response.get("position")
        return cls(
            sku=str(response["sku"]),
            on_hand=int(response["on_hand"]),
            reserved=int(response["reserved"]),
            available=int(response["available"]),
            position=None if position is None else int(position),
            replayed=True,
        )


class _StockCommand:
    """Stock commands run once per idempotency key, scoped to the caller and the operation.
    Without a key (seeding, imports) a command simply runs."""

    operation: ClassVar[str]

    def idempotency_scope(self, metadata: MessageMetadata) -> str:
        return f"{metadata.actor or 'anonymous'}:{self.operation}"


@dataclass(frozen=True)
class SetStock(_StockCommand, Command[StockResult]):
    operation: ClassVar[str] = "inventorySet"
    sku: str
    on_hand: int
    idempotency_key: str | None = None

    def idempotency_request(self) -> dict[str, Any]:
        return {"sku": self.sku, "on_hand": self.on_hand}


@dataclass(frozen=True)
class AdjustStock(_StockCommand, Command[StockResult]):
    operation: ClassVar[str] = "inventoryAdjust"
    sku: str
    delta: int
    reason: str | None = None
    idempotency_key: str | None = None

    def idempotency_request(self) -> dict[str, Any]:
        return {"sku": self.sku, "delta": self.delta, "reason": self.reason}


@dataclass(frozen=True)
class SetStockBuckets(_StockCommand, Command[StockResult]):
    """Spread a hot SKU's stock over ``buckets`` rows (1 gathers it back into one)."""

    operation: ClassVar[str] = "inventorySetBuckets"
    sku: str
    buckets: int
    idempotency_key: str | None = None

    def idempotency_request(self) -> dict[str, Any]:
        return {"sku": self.sku, "buckets": self.buckets}
