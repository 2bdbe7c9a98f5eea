"""An ``_id`` index for the mongomock stand-in.

mongomock keeps a collection's documents in a dict keyed by ``_id`` but answers
every query by scanning all of them in Python, so reads and the carts
projector slow down as carts accumulate. Filters that pin ``_id`` (equality
or ``$in``, as cart reads and bulk upserts do) are answered from the dict
instead; every other filter still scans. Results are the same either way:
candidates are still checked with mongomock's own ``filter_applies``.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, TypeVar, cast

from mongomock.filtering import filter_applies as _untyped_filter_applies

CollectionT = TypeVar("CollectionT")
filter_applies = cast(Callable[[Any, Any], bool], _untyped_filter_applies)


def _id_candidates(filter: object) -> list[Hashable] | None:
    if not isinstance(filter, Mapping) or "_id" not in filter:
        return None
    condition = filter["_id"]
    if isinstance(condition, Mapping):
        values = condition.get("$in") if set(condition) == {"$in"} else None
        if not isinstance(values, list | tuple):
            return None
    else:
        values = [condition]
    if not all(isinstance(v, Hashable) for v in values):
        return None
    return list(dict.fromkeys(values))


def _iter_documents(self: Any, filter: Any) -> Iterator[dict[str, Any]]:
    ids = _id_candidates(filter)
    if ids is None:
        return _scan(self, filter)
    store = self._store
    documents = [store[i] for i in ids if i in store]
    return (d for d in documents if filter_applies(filter, d))


def _scan(self: Any, filter: Any) -> Iterator[dict[str, Any]]:
    if self._store.is_empty:
        filter_applies(filter, {})  # validates the filter, as mongomock does
    return (d for d in list(self._store.documents) if filter_applies(filter, d))


def index_by_id(collection: CollectionT) -> CollectionT:
    """Give one mongomock collection the ``_id`` lookup (instance attribute, no global patch)."""
    collection._iter_documents = types.MethodType(_iter_documents, collection)  # type: ignore[attr-defined]
    return collection
