"""The stand-in answers ``_id`` lookups from its dict instead of scanning every document."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.stores.mongo import index as embedded_mongo_index
from gateway.stores.mongo.client import make_embedded_client


async def test_id_filters_examine_only_their_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_embedded_client()
    carts = client["db"]["carts"]
    await carts.insert_many(
        [{"_id": f"c{n}", "n": n, "status": "ACTIVE" if n % 2 else "MERGED"} for n in range(2000)]
    )
    examined: list[Any] = []
    real = embedded_mongo_index.filter_applies

    def counting(filter: Any, document: Any) -> bool:
        examined.append(document)
        return real(filter, document)

    monkeypatch.setattr(embedded_mongo_index, "filter_applies", counting)
    assert (await carts.find_one({"_id": "c7"}))["n"] == 7
    found = await carts.find({"_id": {"$in": ["c1", "c2", "c3", "missing"]}, "status": "ACTIVE"}).to_list(
        None
    )
    assert sorted(d["n"] for d in found) == [1, 3]
    assert len(examined) == 1 + 3, "only the named documents are looked at"

    examined.clear()
    scanned = await carts.find({"status": "MERGED", "n": {"$lt": 10}}).to_list(None)
    assert sorted(d["n"] for d in scanned) == [0, 2, 4, 6, 8]
    assert len(examined) == 2000, "other filters still scan (same answers as before)"

    await carts.update_one({"_id": "c9"}, {"$set": {"status": "CHECKED_OUT"}})
    assert (await carts.find_one({"_id": "c9"}, {"status": 1})) == {"_id": "c9", "status": "CHECKED_OUT"}
    await client.close()
