"""The app's key-value store: shared by every instance of the app, invisible to other apps,
kept across restarts and hot swaps. Keys are non-empty strings of at most 1024 bytes; values
are bytes (``str`` is stored as UTF-8), at most 1 000 000.

::

    from switchboard_plugin import kv

    kv.set("greeting", "hello")
    kv.get_string("greeting")            # "hello"
    kv.set("session:abc", "uid-1", ttl_ms=3_600_000)
    kv.increment("visits")               # atomic across instances
    for key in kv.keys("session:"):
        ...

Errors raise :class:`KvError` subclasses (:class:`InvalidKey`, :class:`TooLarge`,
:class:`NotANumber`, :class:`InvalidArgument`, :class:`Unavailable`), which are also
``switchboard_plugin.SwitchboardError``.
"""

from __future__ import annotations

from collections.abc import Iterator

from componentize_py_types import Err as _Err
from wit_world.imports import kv as _raw

from . import SwitchboardError


class KvError(SwitchboardError):
    """An error of the key-value store."""

    kind = "kv-error"


class InvalidKey(KvError):
    """A key that is empty or longer than 1024 bytes."""

    kind = "invalid-key"


class TooLarge(KvError):
    """A value above 1 000 000 bytes."""

    kind = "too-large"


class NotANumber(KvError):
    """``increment`` of a value that is not a decimal 64-bit integer, or an overflow."""

    kind = "not-a-number"


class InvalidArgument(KvError):
    """Another argument out of its range (a time to live, a page limit)."""

    kind = "invalid-argument"


class Unavailable(KvError):
    """The store failed or did not answer in time; the operation may be retried."""

    kind = "unavailable"


_ERRORS = {
    _raw.KvError_InvalidKey: InvalidKey,
    _raw.KvError_TooLarge: TooLarge,
    _raw.KvError_NotANumber: NotANumber,
    _raw.KvError_InvalidArgument: InvalidArgument,
    _raw.KvError_Unavailable: Unavailable,
}


def _error(err: _Err) -> KvError:
    value = err.value
    return _ERRORS.get(type(value), KvError)(getattr(value, "value", str(value)))


def get(key: str) -> bytes | None:
    """The value of ``key``, or ``None`` if it is not set (or has expired)."""
    try:
        value = _raw.get(key)
    except _Err as e:
        raise _error(e) from None
    return None if value is None else bytes(value)


def get_string(key: str) -> str | None:
    """The value of ``key`` as text (invalid UTF-8 replaced), or ``None``."""
    value = get(key)
    return None if value is None else value.decode("utf-8", "replace")


def set(key: str, value: str | bytes, ttl_ms: int | None = None) -> None:  # noqa: A001
    """Sets ``key``; with ``ttl_ms`` it disappears that many milliseconds later."""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    try:
        _raw.set(key, data, ttl_ms)
    except _Err as e:
        raise _error(e) from None


def delete(key: str) -> None:
    """Removes ``key``; a key that is not set is no error."""
    try:
        _raw.delete(key)
    except _Err as e:
        raise _error(e) from None


def increment(key: str, delta: int = 1) -> int:
    """Adds ``delta`` atomically (a missing key counts as 0) and returns the new value."""
    try:
        return _raw.increment(key, delta)
    except _Err as e:
        raise _error(e) from None


def list_keys(prefix: str, after: str | None, limit: int) -> list[str]:
    """One page of the keys with ``prefix``, sorted, after ``after``, at most ``limit``."""
    try:
        return list(_raw.list_keys(prefix, after, limit))
    except _Err as e:
        raise _error(e) from None


def keys(prefix: str = "", *, after: str | None = None, page_size: int = 500) -> Iterator[str]:
    """Every key with ``prefix``, sorted, strictly after ``after``, fetched ``page_size`` at a time."""
    while True:
        page = list_keys(prefix, after, page_size)
        if not page:
            return
        yield from page
        after = page[-1]
