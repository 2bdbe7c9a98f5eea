"""Ledger event types, one module per aggregate. Importing this package registers them all."""

from commands.events import cart as cart  # registers the cart event types
from commands.events import catalog as catalog  # registers the catalog event types
from commands.events import inventory as inventory  # registers the inventory event types
from commands.events import money as money  # registers the money configuration and discount use types
from commands.events import order as order  # registers order events
from commands.events.base import EVENT_TYPES, Event, UnknownEventType, decode_event

__all__ = ["EVENT_TYPES", "Event", "UnknownEventType", "decode_event"]
