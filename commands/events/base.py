"""Event base class, type registry and the msgspec JSON codec.

Events are past-tense frozen ``msgspec.Struct`` types. Their fields may be str,
int, bool, float, None, Decimal, datetime, tuples of those, nested structs or
frozen dataclasses, or ``dict[str, Any]`` of JSON values. They are stored in
``ledger_events.data`` as JSON objects: Decimals as strings, datetimes as
``datetime.isoformat()`` (UTC as ``+00:00``), tuples as arrays.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar, TypeVar

import msgspec
import msgspec.inspect as type_info

EventT = TypeVar("EventT", bound="Event")

EVENT_TYPES: dict[str, type[Event]] = {}

_ENCODER = msgspec.json.Encoder()


class UnknownEventType(LookupError):
    """The ledger holds an event type this code does not know."""


class Event(msgspec.Struct, frozen=True):
    """Base of every ledger event. ``stream_type`` names the aggregate kind."""

    stream_type: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        EVENT_TYPES[cls.__name__] = cls

    @classmethod
    def event_type(cls) -> str:
        return cls.__name__

    def to_data(self) -> dict[str, Any]:
        """The JSON object this event is stored as."""
        data = msgspec.json.decode(encode_event(self))
        assert isinstance(data, dict)
        return data

    @classmethod
    def from_data(cls: type[EventT], data: dict[str, Any]) -> EventT:
        event: EventT = _codec(cls).from_data(data)
        return event


class _Codec:
    """The cached msgspec decoder of one event type, and how to encode it."""

    def __init__(self, cls: type[Event]) -> None:
        self.cls = cls
        self.decoder = msgspec.json.Decoder(cls)
        self.format_datetimes = _datetime_formatter(type_info.type_info(cls))

    def encode(self, event: Event) -> bytes:
        if self.format_datetimes is None:
            return _ENCODER.encode(event)
        return _ENCODER.encode(self.format_datetimes(event))

    def from_data(self, data: dict[str, Any]) -> Any:
        return msgspec.convert(data, self.cls)

    def decode(self, raw: bytes | str) -> Any:
        return self.decoder.decode(raw)


@cache
def _codec(cls: type[Event]) -> _Codec:
    return _Codec(cls)


def _event_class(event_type: str) -> type[Event]:
    try:
        return EVENT_TYPES[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def encode_event(event: Event) -> bytes:
    """The JSON stored in ``ledger_events.data`` for ``event``."""
    return _codec(type(event)).encode(event)


def decode_event(event_type: str, data: dict[str, Any]) -> Event:
    """Decode an already parsed ``data`` object of the registered type ``event_type``."""
    event: Event = _codec(_event_class(event_type)).from_data(data)
    return event


def decode_event_json(event_type: str, raw: bytes | str) -> Event:
    """Decode the stored JSON text of the registered type ``event_type``."""
    event: Event = _codec(_event_class(event_type)).decode(raw)
    return event


_Format = Callable[[Any], Any]

_SCALARS = (
    type_info.StrType,
    type_info.IntType,
    type_info.FloatType,
    type_info.BoolType,
    type_info.NoneType,
    type_info.DecimalType,
    type_info.LiteralType,
    type_info.EnumType,
)


def _datetime_formatter(info: type_info.Type) -> _Format | None:
    """How to swap the datetimes in a value of type ``info`` for their isoformat text (None: it has none).

    msgspec writes a UTC datetime as "...Z"; the ledger has always stored
    ``isoformat()``'s "+00:00", so datetimes are formatted before encoding.
    Structs and dataclasses do not check field types, so a copy holding strings encodes as is.
    """
    if isinstance(info, type_info.DateTimeType):
        return _isoformat
    if isinstance(info, type_info.StructType | type_info.DataclassType):
        formats = {f.name: fmt for f in info.fields if (fmt := _datetime_formatter(f.type)) is not None}
        if not formats:
            return None
        replace = msgspec.structs.replace if isinstance(info, type_info.StructType) else dataclasses.replace
        return lambda value: replace(value, **{n: fmt(getattr(value, n)) for n, fmt in formats.items()})
    if isinstance(info, type_info.VarTupleType):
        item_format = _datetime_formatter(info.item_type)
        return None if item_format is None else lambda value: tuple(item_format(v) for v in value)
    if isinstance(info, type_info.UnionType):
        if all(isinstance(t, _SCALARS) for t in info.types):
            return None
        if all(isinstance(t, type_info.DateTimeType | type_info.NoneType) for t in info.types):
            return _isoformat_if_set
    if isinstance(info, type_info.DictType) and isinstance(info.value_type, _SCALARS):
        return None
    if isinstance(info, _SCALARS):
        return None
    # Any, dicts of Any and other shapes: find the datetimes by walking the value.
    return _format_builtins


def _isoformat(value: datetime) -> str:
    if value.tzinfo is UTC:
        # The common case: msgspec's text with isoformat's offset, several times cheaper than isoformat().
        text: str = msgspec.to_builtins(value)
        return text[:-1] + "+00:00"
    return value.isoformat()


def _isoformat_if_set(value: datetime | None) -> str | None:
    return None if value is None else _isoformat(value)


def _format_builtins(value: Any) -> Any:
    return _isoformat_datetimes(msgspec.to_builtins(value, builtin_types=(datetime,)))


def _isoformat_datetimes(value: Any) -> Any:
    if isinstance(value, datetime):
        return _isoformat(value)
    if isinstance(value, dict):
        return {k: _isoformat_datetimes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_isoformat_datetimes(v) for v in value]
    return value
