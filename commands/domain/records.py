"""``evolved``: a frozen dataclass with some fields changed, without re-running ``__init__``.

``dataclasses.replace`` builds the new record through the generated ``__init__``, which for a
frozen class sets every field with ``object.__setattr__``: about 7 µs for an order, paid for
every event folded on the checkout path. A state record here has no ``__post_init__`` and no
``__slots__``, so copying its ``__dict__`` is the same record, built in a fraction of that.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, TypeVar

T = TypeVar("T")


def evolved(record: T, **changes: Any) -> T:
    """``record`` with ``changes`` applied; a name that is not a field is a TypeError, as in
    ``dataclasses.replace``."""
    cls: type[Any] = type(record)
    unknown = changes.keys() - _field_names(cls)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
    new: T = object.__new__(cls)
    state = new.__dict__
    state.update(record.__dict__)
    state.update(changes)
    return new


_FIELD_NAMES: dict[type[Any], frozenset[str]] = {}


def _field_names(cls: type[Any]) -> frozenset[str]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        if not _plain(cls):
            raise TypeError(f"{cls.__name__} is not a plain dataclass: use dataclasses.replace")
        names = _FIELD_NAMES[cls] = frozenset(field.name for field in dataclasses.fields(cls))
    return names


def _plain(cls: type[Any]) -> bool:
    """Nothing computed from the fields that a copied ``__dict__`` would carry over stale: no
    ``__post_init__``, no field set outside ``__init__``, no cached property; and no slots."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__slots__") or hasattr(cls, "__post_init__"):
        return False
    if any(not field.init for field in dataclasses.fields(cls)):
        return False
    return not any(
        isinstance(value, functools.cached_property)
        for klass in cls.__mro__
        for value in vars(klass).values()
    )
