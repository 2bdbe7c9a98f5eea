"""Inventory admin commands. Each returns a StockResult."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from commands.bus import Command
from commands.store.idempotency import Claim

__all__ = ["AdjustStock", "SetStock", "StockResult"]


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

    def to_response(self) -> dict[str, Any]:
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


@dataclass(frozen=True)
class SetStock(Command[StockResult]):
    operation: ClassVar[str] = "inventorySet"
    sku: str
    on_hand: int
    # The idempotency claim taken before dispatch; completed in the command's transaction.
    claim: Claim | None = None

    def request(self) -> dict[str, Any]:
        return {"sku": self.sku, "on_hand": self.on_hand}


@dataclass(frozen=True)
class AdjustStock(Command[StockResult]):
    operation: ClassVar[str] = "inventoryAdjust"
    sku: str
    delta: int
    reason: str | None = None
    claim: Claim | None = None

    def request(self) -> dict[str, Any]:
        return {"sku": self.sku, "delta": self.delta, "reason": self.reason}
