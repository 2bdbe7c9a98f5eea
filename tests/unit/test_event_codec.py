"""The msgspec event codec: every registered event type round-trips, and payloads
stored before the codec change (PostgreSQL ``data::text``) decode and re-encode
to the same JSON values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commands.events import EVENT_TYPES, Event
from commands.events.base import decode_event, decode_event_json, encode_event
from commands.events.cart import CartCreated, CartLinesRemoved
from tests.unit.event_samples import SAMPLES

# (type, data) rows read back from ledger_events after the dataclass codec appended SAMPLES.
STORED: list[tuple[str, str]] = [
    (event_type, data)
    for event_type, data in json.loads((Path(__file__).parent / "stored_event_payloads.json").read_text())
]
SAMPLE_BY_TYPE = {sample.event_type(): sample for sample in SAMPLES}


def test_every_production_event_type_has_a_sample() -> None:
    production = {name for name, cls in EVENT_TYPES.items() if cls.__module__.startswith("commands.events.")}
    assert production == set(SAMPLE_BY_TYPE)
    assert len(production) == len(SAMPLES)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.event_type())
def test_every_event_type_round_trips(event: Event) -> None:
    raw = encode_event(event)
    assert decode_event_json(event.event_type(), raw) == event
    assert decode_event(event.event_type(), json.loads(raw)) == event
    assert type(event).from_data(event.to_data()) == event


@pytest.mark.parametrize(("event_type", "data"), STORED, ids=[t for t, _ in STORED])
def test_payloads_stored_by_the_previous_codec_decode(event_type: str, data: str) -> None:
    expected = SAMPLE_BY_TYPE[event_type]
    assert decode_event(event_type, json.loads(data)) == expected
    assert decode_event_json(event_type, data) == expected
    # And the current encoder writes the same JSON values, so older readers still decode them.
    assert json.loads(encode_event(expected)) == json.loads(data)


def test_stored_format_keeps_decimal_strings_and_isoformat_datetimes() -> None:
    stored = dict(STORED)
    assert '"unit_price": "19.90"' in stored["CartCreated"]
    assert '"created_at": "2026-11-22T10:15:00+00:00"' in stored["ProductCreated"]
    assert '"expires_at": "2026-11-22T10:30:05.123456+00:00"' in stored["StockReserved"]
    product = SAMPLE_BY_TYPE["ProductCreated"].to_data()["product"]
    assert product["created_at"] == "2026-11-22T10:15:00+00:00"
    assert product["updated_at"] == "2026-11-22T10:30:05.123456+00:00"
    assert product["variants"][0]["price"] == "19.90"
    assert SAMPLE_BY_TYPE["StockReserved"].to_data()["expires_at"] == "2026-11-22T10:30:05.123456+00:00"


def test_missing_defaulted_fields_and_unknown_fields_are_tolerated() -> None:
    decoded = decode_event("CartCreated", {"cart_id": "c-9", "currency_code": "EUR"})
    assert decoded == CartCreated("c-9", "EUR", customer_id=None, lines=())
    unknown_field = '{"line_ids": ["1"], "added_later": true}'
    assert decode_event_json("CartLinesRemoved", unknown_field) == CartLinesRemoved(("1",))
