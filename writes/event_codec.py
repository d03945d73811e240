"""Events to and from the log: the JSON data of a row, its type name and schema version.

Each event class carries its `schema_version`. A row written at an older version is
upcast (pure functions, one per version step) to the class's version before it is
turned back into the dataclass. The registry is an object (`EventCodec`) so a test can
build one with classes and upcasters of its own; `EVENTS` is the shop's.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from writes.events import (
    CustomerRegistered,
    DomainEvent,
    OrderCancelled,
    OrderPlaced,
    OrderShipped,
    ProductCreated,
    ProductPriceChanged,
    ProductRestocked,
)

# The data of one version, turned into the data of the next.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
# A row's JSON value turned into a field's value (a nested dataclass, a tuple).
_Convert = Callable[[Any], Any]


class UnknownEventType(LookupError):
    """A row whose type this code does not know: written by newer code."""


class EventDecodeError(ValueError):
    """A row of a known type that does not decode: malformed data, or a newer version."""


@dataclass(frozen=True)
class EncodedJson:
    """An event as a log row is written: its type, version and data as JSON text."""

    type: str
    schema_version: int
    data: str


@dataclass(frozen=True)
class EncodedEvent:
    """An event as a log row holds it."""

    type: str
    schema_version: int
    data: dict[str, Any]


class EventCodec:
    """The event classes by type name, with the upcasters that bring old rows up to date.

    `upcasters[(type, n)]` takes that type's data from version n to n + 1; every step
    from 1 to each class's version must be there, which is checked when the codec is
    built, not when an old row turns up.
    """

    def __init__(
        self,
        events: Iterable[type[DomainEvent]],
        upcasters: Mapping[tuple[str, int], Upcaster] | None = None,
    ) -> None:
        upcasters = dict(upcasters or {})
        self._classes: dict[str, type[DomainEvent]] = {}
        for cls in events:
            if cls.__name__ in self._classes:
                raise ValueError(f"two event classes are named {cls.__name__}")
            self._classes[cls.__name__] = cls
        self._steps: dict[str, tuple[Upcaster, ...]] = {}
        for name, cls in self._classes.items():
            missing = [n for n in range(1, cls.schema_version) if (name, n) not in upcasters]
            if missing:
                raise ValueError(f"{name} v{cls.schema_version} has no upcaster from v{missing}")
            self._steps[name] = tuple(
                upcasters.pop((name, n)) for n in range(1, cls.schema_version)
            )
        if upcasters:
            raise ValueError(f"upcasters for no registered version step: {sorted(upcasters)}")
        # Built once per class: decoding runs for every row a rebuild reads.
        self._decoders = {name: _decoder(cls) for name, cls in self._classes.items()}

    def encode(self, event: DomainEvent) -> EncodedEvent:
        cls = type(event)
        if self._classes.get(cls.__name__) is not cls:
            raise UnknownEventType(f"{cls.__name__} is not a registered event class")
        return EncodedEvent(cls.__name__, cls.schema_version, dataclasses.asdict(event))

    def encode_json(self, event: DomainEvent) -> EncodedJson:
        """`encode` with the data as the JSON the log stores, in one pass: orjson writes a
        dataclass (nested ones and tuples too) straight to JSON, where `asdict` deep-copies
        it into dicts first, which was most of an append's Python time."""
        cls = type(event)
        if self._classes.get(cls.__name__) is not cls:
            raise UnknownEventType(f"{cls.__name__} is not a registered event class")
        return EncodedJson(cls.__name__, cls.schema_version, orjson.dumps(event).decode())

    def decode(self, type_name: str, schema_version: int | None, data: Any) -> DomainEvent:
        """The event of a row: its data upcast from `schema_version`, then the dataclass.

        Raises UnknownEventType for a type this code does not know, EventDecodeError for
        anything else that stops the row from becoming its dataclass (no version or one
        newer than this code's, data that is not an object, a missing or unexpected
        field, a failing upcaster).
        """
        decode = self._decoders.get(type_name)
        if decode is None:
            raise UnknownEventType(type_name)
        if not isinstance(data, Mapping):
            raise EventDecodeError(f"{type_name}: the data is not a JSON object: {data!r:.80}")
        steps = self._steps[type_name]
        current = len(steps) + 1
        if schema_version is None or not 1 <= schema_version <= current:
            raise EventDecodeError(
                f"{type_name} v{schema_version}: this code knows versions 1 to {current}"
            )
        try:
            for upcast in steps[schema_version - 1 :]:
                data = upcast(dict(data))
            return typing.cast("DomainEvent", decode(data))
        except Exception as exc:
            raise EventDecodeError(
                f"{type_name} v{schema_version}: {type(exc).__name__}: {exc}"
            ) from exc


def _decoder(cls: type) -> _Convert:
    """A function from a JSON object to an instance of the frozen dataclass `cls`.

    The fields are looked at once, here. The instance is filled through its __dict__,
    not __init__: a frozen dataclass's __init__ sets each field through
    object.__setattr__, which made decoding cost as much as folding. The field names are
    checked first, so a missing or extra field fails as it would in __init__.
    """
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__}: events are plain frozen dataclasses (no slots)")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: decoding does not run __post_init__")
    hints = typing.get_type_hints(cls)
    names = frozenset(field.name for field in dataclasses.fields(cls))
    nested = {name: convert for name in names if (convert := _converter(hints[name]))}
    nested_items = tuple(nested.items())
    new = object.__new__

    def check(data: Any) -> None:
        if type(data) is not dict:
            raise TypeError(f"{cls.__name__} needs a JSON object, not {data!r:.60}")
        if data.keys() != names:
            raise TypeError(
                f"{cls.__name__} lacks {sorted(names - data.keys())}, "
                f"has unexpected {sorted(data.keys() - names)}"
            )

    # The fields are checked in one comparison on the way in; only classes with nested
    # fields (an order: its customer, its lines) convert anything after the copy.
    def decode_scalars(data: Any) -> Any:
        if type(data) is not dict or data.keys() != names:
            check(data)
        instance = new(cls)
        instance.__dict__.update(data)
        return instance

    def decode_nested(data: Any) -> Any:
        if type(data) is not dict or data.keys() != names:
            check(data)
        instance = new(cls)
        values = instance.__dict__
        values.update(data)
        for name, convert in nested_items:
            values[name] = convert(values[name])
        return instance

    return decode_nested if nested else decode_scalars


def _converter(hint: Any) -> _Convert | None:
    """How a JSON value becomes a value of type `hint`; None when it already is one."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decoder(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _converter(args[0])
        if item is None:
            return tuple
        return lambda values: tuple(map(item, values))
    if hint in _SCALARS or (
        origin in (typing.Union, types.UnionType) and all(arg in _SCALARS for arg in args)
    ):
        return None
    # Anything else (a list, a dict) would be mutable or need a decoder of its own.
    raise TypeError(f"event fields hold JSON scalars, dataclasses and tuple[X, ...], not {hint}")


_SCALARS = (str, int, float, bool, type(None))


# Every event the shop writes. A class whose schema_version goes up gets its upcaster
# here: (type name, old version) -> a function from the old data to the new.
EVENTS = EventCodec(
    [
        CustomerRegistered,
        ProductCreated,
        ProductPriceChanged,
        ProductRestocked,
        OrderPlaced,
        OrderCancelled,
        OrderShipped,
    ]
)
