"""The base of every protocol message class: a value made of the attributes ``_fields`` names.

The message classes are plain classes with an explicit ``__init__``, not dataclasses: mypyc compiles
them (setup.py), and a compiled dataclass hands ``dataclasses`` the annotation ``bytes`` for
``TYPE: ClassVar[bytes]``, which then takes the class variable for a field (a default before the
fields without one: the class cannot be made). Compiled, building a message is a C call; in pure
Python, a plain ``__init__`` is about four times cheaper than a frozen dataclass's (which sets each
field through ``object.__setattr__``).

Messages are values: equal when of the same class with equal fields, hashable, and never changed
once made (nothing assigns to a message's attributes; build a new one).
"""

from __future__ import annotations

from typing import ClassVar


class Message:
    #: the type byte (``b""``: a startup-phase packet, which has none)
    TYPE: ClassVar[bytes] = b""
    #: the attributes that make the value, in ``__init__``'s order
    _fields: ClassVar[tuple[str, ...]] = ()

    def body(self) -> bytes:
        """The message's bytes after its type byte and length (each message class has its own)."""
        raise NotImplementedError(self.__class__.__name__)

    def _values(self) -> tuple[object, ...]:
        return tuple([getattr(self, name) for name in self._fields])

    def __eq__(self, other: object) -> bool:
        return other.__class__ is self.__class__ and isinstance(other, Message) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash((self.__class__.__name__, self._values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{self.__class__.__name__}({inner})"
