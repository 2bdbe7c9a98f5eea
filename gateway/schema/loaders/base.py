"""Per-request DataLoader building blocks shared by every domain.

``keyed_loader`` turns a "fetch many by key" query into a DataLoader (missing
keys resolve to None); ``request_freshness`` computes a read model's freshness
once per request however many fields report it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import TypeVar

from aiodataloader import DataLoader

from gateway.edge.context import Info
from queries.freshness import Freshness

KeyT = TypeVar("KeyT", bound=Hashable)
ValueT = TypeVar("ValueT")


def keyed_loader(
    info: Info,
    name: str,
    fetch: Callable[[Sequence[KeyT]], Awaitable[Mapping[KeyT, ValueT]]],
    *,
    on_found: Callable[[Sequence[ValueT]], None] | None = None,
) -> DataLoader:  # type: ignore[type-arg]
    """The request's loader ``name``: one ``fetch`` per batch of keys."""

    async def load(keys: Sequence[KeyT]) -> list[ValueT | None]:
        found = await fetch(keys)
        if on_found is not None:
            on_found(list(found.values()))
        return [found.get(key) for key in keys]

    return info.context.loader(name, lambda: DataLoader(load))


def _freshness_loader(info: Info) -> DataLoader:  # type: ignore[type-arg]
    service = info.context.container.freshness

    async def load(projections: Sequence[str]) -> list[Freshness]:
        return [await service.freshness(name) for name in projections]

    return info.context.loader("freshness", lambda: DataLoader(load))


async def request_freshness(info: Info, projection: str) -> Freshness:
    """The read model's freshness as of the first field of this request that asked."""
    result: Freshness = await _freshness_loader(info).load(projection)
    return result


def forget_freshness(info: Info, projection: str) -> None:
    """Make the next ``request_freshness`` measure again (after a write in this request)."""
    _freshness_loader(info).clear(projection)


__all__ = ["forget_freshness", "keyed_loader", "request_freshness"]
