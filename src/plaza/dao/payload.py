"""Strict readers for event payloads: every field typed, bounded, and accounted for.

A handler reads each field it needs through a :class:`Payload` and calls
:meth:`Payload.finish`, which refuses fields nobody read. A malformed payload is an
:class:`~plaza.dao.errors.InvalidPayloadError` naming the field.
"""

from __future__ import annotations

import re
from typing import Any, Final

from plaza.dao.errors import InvalidPayloadError

_REQUIRED: Final = object()
_DID_RE: Final = re.compile(r"^did:[a-z]+:[A-Za-z0-9._:%-]*[A-Za-z0-9._-]$")
MAX_INT: Final = 2**63 - 1


def valid_did(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 2048 and _DID_RE.match(value) is not None


class _Absent(Exception):
    """An optional field is absent: its default is returned unchecked."""

    def __init__(self, default: Any) -> None:
        self.default = default


def _defaulting(method: Any) -> Any:
    def wrapper(self: Payload, key: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, key, *args, **kwargs)
        except _Absent as absent:
            return absent.default

    wrapper.__doc__ = method.__doc__
    return wrapper


class Payload:
    """Typed access to one event's payload."""

    def __init__(self, payload: dict[str, Any], event_type: str) -> None:
        self._d = payload
        self._type = event_type
        self._read: set[str] = set()

    def _get(self, key: str, default: Any) -> Any:
        self._read.add(key)
        if key in self._d:
            return self._d[key]
        if default is _REQUIRED:
            raise InvalidPayloadError(f"{self._type}: missing field {key!r}")
        raise _Absent(default)

    def _bad(self, key: str, what: str) -> InvalidPayloadError:
        return InvalidPayloadError(f"{self._type}: field {key!r} must be {what}")

    @_defaulting
    def text(self, key: str, *, max_len: int = 2000, default: Any = _REQUIRED) -> str:
        v = self._get(key, default)
        if not isinstance(v, str) or len(v) > max_len:
            raise self._bad(key, f"a string of at most {max_len} characters")
        return v

    @_defaulting
    def integer(self, key: str, *, lo: int = 0, hi: int = MAX_INT, default: Any = _REQUIRED) -> int:
        v = self._get(key, default)
        if type(v) is not int or not lo <= v <= hi:
            raise self._bad(key, f"an integer in [{lo}, {hi}]")
        return v

    @_defaulting
    def did(self, key: str, default: Any = _REQUIRED) -> str:
        v = self._get(key, default)
        if not valid_did(v):
            raise self._bad(key, "a DID")
        assert isinstance(v, str)
        return v

    @_defaulting
    def boolean(self, key: str, default: Any = _REQUIRED) -> bool:
        v = self._get(key, default)
        if type(v) is not bool:
            raise self._bad(key, "true or false")
        return v

    @_defaulting
    def mapping(self, key: str, default: Any = _REQUIRED) -> dict[str, Any] | None:
        v = self._get(key, default)
        if v is None and default is None:
            return None
        if type(v) is not dict:
            raise self._bad(key, "a map")
        return v

    @_defaulting
    def strings(self, key: str, *, max_items: int = 1000, default: Any = _REQUIRED) -> list[str]:
        v = self._get(key, default)
        if (
            type(v) is not list
            or len(v) > max_items
            or not all(isinstance(s, str) and 0 < len(s) <= 200 for s in v)
        ):
            raise self._bad(key, f"a list of at most {max_items} non-empty strings")
        return list(v)

    @_defaulting
    def choice(self, key: str, options: tuple[str, ...], default: Any = _REQUIRED) -> str:
        v = self._get(key, default)
        if v not in options:
            raise self._bad(key, f"one of {', '.join(options)}")
        assert isinstance(v, str)
        return v

    def finish(self) -> None:
        extra = set(self._d) - self._read
        if extra:
            raise InvalidPayloadError(f"{self._type}: unknown fields {sorted(extra)}")
