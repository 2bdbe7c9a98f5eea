"""Ledger event types, one module per aggregate. Importing this package registers them all."""

from commands.events import cart as cart  # registers the cart event types
from commands.events.base import EVENT_TYPES, Event, UnknownEventType, decode_event

__all__ = ["EVENT_TYPES", "Event", "UnknownEventType", "decode_event"]
