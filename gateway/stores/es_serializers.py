"""JSON for the search client, by msgspec instead of the standard library.

A search answer (hits plus facet buckets) is decoded on every product read, and the
search projector encodes every document it indexes; msgspec does both at a fraction of
the standard library's CPU. Same values: decimals go out as JSON numbers (the stock
serializer sends them as floats), dates and UUIDs as strings.
"""

from __future__ import annotations

from typing import Any

import msgspec
from elasticsearch.serializer import JsonSerializer, NdjsonSerializer, Serializer


class _Msgspec:
    _encoder = msgspec.json.Encoder(decimal_format="number")

    def json_dumps(self, data: Any) -> bytes:
        return self._encoder.encode(data)

    def json_loads(self, data: bytes) -> Any:
        try:
            return msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            # The client's loads() reports ValueErrors as serialization errors.
            raise ValueError(str(exc)) from exc


class MsgspecJsonSerializer(_Msgspec, JsonSerializer):
    pass


class MsgspecNdjsonSerializer(_Msgspec, NdjsonSerializer):
    pass


def search_serializers() -> dict[str, Serializer]:
    """For ``AsyncElasticsearch(serializers=...)``; the compatibility mimetypes follow these."""
    return {
        MsgspecJsonSerializer.mimetype: MsgspecJsonSerializer(),
        MsgspecNdjsonSerializer.mimetype: MsgspecNdjsonSerializer(),
    }
