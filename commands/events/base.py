"""Event base class, JSON codec and type registry.

Events are past-tense frozen dataclasses. Their fields may be str, int, bool,
float, None, Decimal, datetime, tuples of those, nested frozen dataclasses, or
``dict[str, Any]`` of JSON values. They are stored in ``ledger_events.data`` as
JSON (Decimals as strings, datetimes as ISO-8601) and decoded by type hints.
"""

from __future__ import annotations

import dataclasses
import types
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

EventT = TypeVar("EventT", bound="Event")

EVENT_TYPES: dict[str, type[Event]] = {}


class UnknownEventType(LookupError):
    """The ledger holds an event type this code does not know."""


@dataclasses.dataclass(frozen=True)
class Event:
    """Base of every ledger event. ``stream_type`` names the aggregate kind."""

    stream_type: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        EVENT_TYPES[cls.__name__] = cls

    @classmethod
    def event_type(cls) -> str:
        return cls.__name__

    def to_data(self) -> dict[str, Any]:
        encoded = to_jsonable(self)
        assert isinstance(encoded, dict)
        return encoded

    @classmethod
    def from_data(cls: type[EventT], data: dict[str, Any]) -> EventT:
        decoded = from_jsonable(cls, data)
        assert isinstance(decoded, cls)
        return decoded


def decode_event(event_type: str, data: dict[str, Any]) -> Event:
    try:
        cls = EVENT_TYPES[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None
    return cls.from_data(data)


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def from_jsonable(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        inner = [a for a in get_args(hint) if a is not type(None)]
        return from_jsonable(inner[0], value) if len(inner) == 1 else value
    if origin is tuple:
        args = get_args(hint)
        item_hint = args[0] if args else Any
        return tuple(from_jsonable(item_hint, v) for v in value)
    if origin is list:
        args = get_args(hint)
        return [from_jsonable(args[0] if args else Any, v) for v in value]
    if origin is dict or hint is dict:
        return dict(value)
    if hint is Decimal:
        return Decimal(str(value))
    if hint is datetime:
        return datetime.fromisoformat(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = _hints(hint)
        kwargs = {
            f.name: from_jsonable(hints[f.name], value[f.name])
            for f in dataclasses.fields(hint)
            if f.name in value
        }
        return hint(**kwargs)
    return value


_HINT_CACHE: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    cached = _HINT_CACHE.get(cls)
    if cached is None:
        # Each class in the MRO resolves its string annotations in its own module.
        cached = get_type_hints(cls)
        _HINT_CACHE[cls] = cached
    return cached
