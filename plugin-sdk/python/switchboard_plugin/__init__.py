"""Write Switchboard plugins in Python.

A plugin is a WebAssembly component of the WIT world ``switchboard:plugin/plugin``: the host
calls its event handlers (a message arrived, a client left, a timer fired …) and the plugin
calls the host API (send to a client, a uid, a group or everyone; bind uids; manage groups and
sessions; list and count clients; set timers; log). This package wraps the bindings that
componentize-py generates in plain Python: strings, ``bytes``, ``dict`` sessions, exceptions.

A plugin is a module (``app.py``) that subclasses :class:`Plugin` and exports it::

    import switchboard_plugin as sb

    class Echo(sb.Plugin):
        def on_message(self, ctx: sb.Context, message: sb.Message) -> None:
            ctx.reply(message)

    Events = sb.export(Echo)

``switchboard-build PLUGIN_DIR -o echo.wasm`` (see ``switchboard_build``) turns it into a
component.

One plugin object lives in each instance, created on the instance's first event; the host
never runs two handlers of one instance at once. Several instances of one plugin run side by
side: state that must be shared belongs in sessions, uids and groups (on the gateways).
A :class:`SwitchboardError` that escapes a handler is logged at warn and the event ends
normally; any other exception traps: only that event is lost and the host replaces the
instance (see :class:`Plugin`).

Beyond the API: :mod:`switchboard_plugin.variables`, :mod:`switchboard_plugin.kv` and
:mod:`switchboard_plugin.http`, as the app's ``[apps.NAME]`` table grants them.

Errors the host returns are raised as :class:`SwitchboardError` subclasses
(:class:`InvalidClientId`, :class:`InvalidName`, :class:`TooLarge`, :class:`InvalidArgument`,
:class:`Timeout`).
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass
import inspect as _inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Literal, TypeAlias, get_args

from componentize_py_types import Err as _Err
from wit_world.exports import Events as _EventsProtocol
from wit_world.imports import api as _api
from wit_world.imports import switchboard_plugin_types as _t

__all__ = [
    "Message", "Session", "SwitchboardError", "InvalidClientId", "InvalidName", "TooLarge",
    "InvalidArgument", "Timeout", "Context", "HttpRequest", "Rejection", "Bound", "ClientInfo",
    "SystemInfo", "Plugin", "export", "send_to_client", "send_to_uid", "send_to_group",
    "send_to_all", "is_online", "is_uid_online", "get_client_count", "get_client_count_by_group",
    "get_uid_count_by_group", "get_uid_count", "get_client_list", "get_client_list_by_group",
    "get_client_list_by_uid", "clients", "clients_in_group", "clients_of_uid", "get_uid_list",
    "get_uid_list_by_group", "get_group_list", "get_client_info", "close_client", "bind_uid",
    "unbind_uid", "join_group", "leave_group", "ungroup", "set_session", "update_session",
    "delete_session", "get_session", "set_timer", "clear_timer", "log", "trace", "debug", "info",
    "warn", "error", "INFO_FIELDS", "is_valid_client_id", "http", "kv", "variables",
    "send_to_uids", "send_to_groups", "send_to_clients", "close_client_with",
    "get_uid_list_paged", "get_uid_list_by_group_paged", "get_group_list_paged", "uids",
    "uids_in_group", "groups", "get_client_sessions", "get_client_sessions_by_group",
    "client_sessions", "client_sessions_in_group", "get_client_count_by_groups",
    "get_client_ids_by_uids", "session_json", "set_session_json", "InfoField", "LogLevel",
    "DEFAULT_PAGE_SIZE",
]

#: One complete message: ``str`` for text (a WebSocket text frame, a text-protocol line),
#: ``bytes`` for binary (a WebSocket binary frame, a length-prefixed frame).
Message: TypeAlias = str | bytes

#: A client's session: string keys to string values.
Session: TypeAlias = dict[str, str]

#: A field :func:`get_client_info` can fill.
InfoField: TypeAlias = Literal["remote_ip", "remote_port", "uid", "session", "groups", "system"]

#: All the fields :func:`get_client_info` can fill: ``get_client_info(client, INFO_FIELDS)``.
INFO_FIELDS: tuple[InfoField, ...] = get_args(InfoField)

#: A level of :func:`log`.
LogLevel: TypeAlias = Literal["trace", "debug", "info", "warn", "error"]

#: The page size of the paging iterators (:func:`clients`, :func:`uids` …) unless told otherwise.
DEFAULT_PAGE_SIZE = 256


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------


class SwitchboardError(Exception):
    """An error the host API returned. ``kind`` is the WIT case name, ``detail`` its text."""

    kind = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        what = self.kind.replace("-", " ")
        return f"{what}: {self.detail}" if self.detail else what


class InvalidClientId(SwitchboardError):
    """A client id that is not 20 lowercase hex characters."""

    kind = "invalid-client-id"


class InvalidName(SwitchboardError):
    """A uid or group that is empty or longer than 256 bytes."""

    kind = "invalid-name"


class TooLarge(SwitchboardError):
    """A message or session above the host's limit."""

    kind = "too-large"


class InvalidArgument(SwitchboardError):
    """Another argument out of its range, such as a list ``limit`` of 0 or above 1000."""

    kind = "invalid-argument"


class Timeout(SwitchboardError):
    """A cluster query that did not complete in time; no partial answer is given."""

    kind = "timeout"


_ERRORS = {
    _t.Error_InvalidClientId: InvalidClientId,
    _t.Error_InvalidName: InvalidName,
    _t.Error_TooLarge: TooLarge,
    _t.Error_InvalidArgument: InvalidArgument,
    _t.Error_Timeout: Timeout,
}


def _error(err: _Err) -> SwitchboardError:
    value = err.value
    return _ERRORS.get(type(value), SwitchboardError)(getattr(value, "value", str(value)))


# ------------------------------------------------------------------------------------------
# Conversions
# ------------------------------------------------------------------------------------------


def _message_to_raw(message: Message) -> _t.Message:
    if isinstance(message, str):
        return _t.Message_Text(message)
    if isinstance(message, (bytes, bytearray, memoryview)):
        return _t.Message_Binary(bytes(message))
    raise TypeError(f"a message is str or bytes, not {type(message).__name__}")


def _session_to_raw(session: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    items = session.items() if isinstance(session, Mapping) else session
    merged = {str(k): str(v) for k, v in items}
    return sorted(merged.items())


def is_valid_client_id(client: str) -> bool:
    """Whether ``client`` is a well-formed client id (20 lowercase hex characters)."""
    return len(client) == 20 and all(c in "0123456789abcdef" for c in client)


# ------------------------------------------------------------------------------------------
# Event data
# ------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What the host tells a handler about the client an event concerns."""

    #: The client the event is about (20 lowercase hex characters).
    client: str
    #: The client's remote address, ``ip:port``.
    remote_addr: str
    #: The id of the gateway that holds the client.
    gateway_id: int
    #: The uid the client is bound to, if any.
    uid: str | None
    #: A snapshot of the client's session, taken when the event left the gateway.
    session: Session

    def reply(self, message: Message) -> None:
        """Queues ``message`` to this event's client (see :func:`send_to_client`)."""
        send_to_client(self.client, message)

    @staticmethod
    def _from_raw(ctx: _t.Context) -> "Context":
        return Context(ctx.client, ctx.remote_addr, ctx.gateway_id, ctx.uid, dict(ctx.session))


@dataclass
class HttpRequest:
    """The WebSocket upgrade request, as :meth:`Plugin.on_websocket_connect` sees it."""

    #: The request path, such as ``/chat``.
    path: str
    #: The query string without ``?``, empty if none.
    query: str
    #: The request headers, names in lowercase, in the order received.
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), if present."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def query_param(self, name: str) -> str | None:
        """The raw value of ``name`` in the query string (``""`` for a bare key), if present."""
        for part in self.query.split("&"):
            key, _, value = part.partition("=")
            if key == name:
                return value
        return None


class Rejection(Exception):
    """Refuses a WebSocket handshake: raise (or return) it from ``on_websocket_connect``.

    The client gets HTTP ``status`` (400 to 599; others become 403) with ``reason`` as body.
    """

    def __init__(self, status: int = 403, reason: str = "forbidden") -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass
class Bound:
    """What was bound to a client when it left; passed to :meth:`Plugin.on_close`."""

    #: The uid the client was bound to, if any.
    uid: str | None
    #: The groups the client was a member of, sorted.
    groups: list[str]


@dataclass
class SystemInfo:
    """Facts the gateway keeps about a connection."""

    protocol: str  #: ``"websocket"``, ``"text"`` or ``"frame"``
    connected_at_ms: int
    last_active_ms: int
    bytes_in: int
    bytes_out: int
    gateway_id: int


@dataclass
class ClientInfo:
    """What :func:`get_client_info` returns: only the asked fields are not ``None``."""

    client: str
    remote_ip: str | None
    remote_port: int | None
    uid: str | None
    session: Session | None
    groups: list[str] | None
    system: SystemInfo | None


# ------------------------------------------------------------------------------------------
# The API
# ------------------------------------------------------------------------------------------


def send_to_client(client: str, message: Message) -> None:
    """Queues ``message`` to the client. A well-formed id of a client that is gone: nothing is sent."""
    try:
        _api.send_to_client(client, _message_to_raw(message))
    except _Err as e:
        raise _error(e) from None


def send_to_uid(uid: str, message: Message, without: Iterable[str] = ()) -> None:
    """Sends to every client bound to ``uid``, except those in ``without``."""
    try:
        _api.send_to_uid(uid, _message_to_raw(message), list(without))
    except _Err as e:
        raise _error(e) from None


def send_to_group(group: str, message: Message, without: Iterable[str] = ()) -> None:
    """Sends to every member of ``group`` on every gateway, except those in ``without``."""
    try:
        _api.send_to_group(group, _message_to_raw(message), list(without))
    except _Err as e:
        raise _error(e) from None


def send_to_all(message: Message, without: Iterable[str] = ()) -> None:
    """Sends to every connected client that finished its handshake, except those in ``without``."""
    try:
        _api.send_to_all(_message_to_raw(message), list(without))
    except _Err as e:
        raise _error(e) from None


def send_to_uids(uids: Iterable[str], message: Message, without: Iterable[str] = ()) -> None:
    """Sends to every client bound to any of ``uids`` (at most 1000), except those in
    ``without``: one call and one bus message per gateway; a client reached twice gets it once."""
    try:
        _api.send_to_uids(list(uids), _message_to_raw(message), list(without))
    except _Err as e:
        raise _error(e) from None


def send_to_groups(groups: Iterable[str], message: Message, without: Iterable[str] = ()) -> None:
    """Sends to every member of any of ``groups`` (at most 1000), once each, except ``without``."""
    try:
        _api.send_to_groups(list(groups), _message_to_raw(message), list(without))
    except _Err as e:
        raise _error(e) from None


def send_to_clients(clients: Iterable[str], message: Message) -> None:
    """Queues ``message`` to each listed client (at most 1000) once."""
    try:
        _api.send_to_clients(list(clients), _message_to_raw(message))
    except _Err as e:
        raise _error(e) from None


def is_online(client: str) -> bool:
    """Whether the client is connected now."""
    try:
        return _api.is_online(client)
    except _Err as e:
        raise _error(e) from None


def is_uid_online(uid: str) -> bool:
    """Whether at least one client is bound to ``uid``."""
    try:
        return _api.is_uid_online(uid)
    except _Err as e:
        raise _error(e) from None


def get_client_count() -> int:
    """The number of connected clients (handshake finished) in the whole cluster."""
    try:
        return _api.get_client_count()
    except _Err as e:
        raise _error(e) from None


def get_client_count_by_group(group: str) -> int:
    """The number of members of ``group``."""
    try:
        return _api.get_client_count_by_group(group)
    except _Err as e:
        raise _error(e) from None


def get_uid_count_by_group(group: str) -> int:
    """The exact number of distinct uids among the members of ``group``."""
    try:
        return _api.get_uid_count_by_group(group)
    except _Err as e:
        raise _error(e) from None


def get_uid_count(unique_percent: float | None = None) -> int:
    """``None``: the exact number of distinct bound uids. A number ``p``: a cheap estimate
    (each gateway's distinct-uid count multiplied by ``p``, summed)."""
    try:
        return _api.get_uid_count(unique_percent)
    except _Err as e:
        raise _error(e) from None


def get_client_list(after: str | None, limit: int) -> list[str]:
    """One page of connected clients sorted by id, strictly after ``after``, at most ``limit``
    (1..=1000). An empty page means the end; :func:`clients` pages for you."""
    try:
        return _api.get_client_list(after, limit)
    except _Err as e:
        raise _error(e) from None


def get_client_list_by_group(group: str, after: str | None, limit: int) -> list[str]:
    """Like :func:`get_client_list`, members of ``group`` only."""
    try:
        return _api.get_client_list_by_group(group, after, limit)
    except _Err as e:
        raise _error(e) from None


def get_client_list_by_uid(uid: str, after: str | None, limit: int) -> list[str]:
    """Like :func:`get_client_list`, clients bound to ``uid`` only."""
    try:
        return _api.get_client_list_by_uid(uid, after, limit)
    except _Err as e:
        raise _error(e) from None


def _pages(fetch, page_size: int, after: str | None) -> Iterator[str]:
    while True:
        page = fetch(after, page_size)
        if not page:
            return
        yield from page
        after = page[-1]


def clients(*, after: str | None = None, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[str]:
    """Every connected client, sorted by id, fetched ``page_size`` at a time."""
    return _pages(get_client_list, page_size, after)


def clients_in_group(group: str, *, after: str | None = None, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[str]:
    """Every member of ``group``, sorted by id, fetched page by page."""
    return _pages(lambda a, n: get_client_list_by_group(group, a, n), page_size, after)


def clients_of_uid(uid: str, *, after: str | None = None, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[str]:
    """Every client bound to ``uid``, sorted by id, fetched page by page."""
    return _pages(lambda a, n: get_client_list_by_uid(uid, a, n), page_size, after)


def get_uid_list(unique: bool) -> list[str]:
    """Bound uids, sorted. ``unique`` (required): each once across the cluster (the expensive
    cluster-wide query), else each gateway's list concatenated (cheaper, may repeat)."""
    try:
        return _api.get_uid_list(unique)
    except _Err as e:
        raise _error(e) from None


def get_uid_list_by_group(group: str, unique: bool) -> list[str]:
    """Uids bound to members of ``group``, sorted; ``unique`` as in :func:`get_uid_list`."""
    try:
        return _api.get_uid_list_by_group(group, unique)
    except _Err as e:
        raise _error(e) from None


def get_group_list(unique: bool) -> list[str]:
    """Groups that have members, sorted; ``unique`` as in :func:`get_uid_list`."""
    try:
        return _api.get_group_list(unique)
    except _Err as e:
        raise _error(e) from None


def get_uid_list_paged(after: str | None, limit: int) -> list[str]:
    """One page of bound uids, sorted, each once, strictly after ``after``, at most ``limit``."""
    try:
        return _api.get_uid_list_paged(after, limit)
    except _Err as e:
        raise _error(e) from None


def get_uid_list_by_group_paged(group: str, after: str | None, limit: int) -> list[str]:
    """Like :func:`get_uid_list_paged`, uids bound to members of ``group`` only."""
    try:
        return _api.get_uid_list_by_group_paged(group, after, limit)
    except _Err as e:
        raise _error(e) from None


def get_group_list_paged(after: str | None, limit: int) -> list[str]:
    """One page of groups that have members, sorted, strictly after ``after``, at most ``limit``."""
    try:
        return _api.get_group_list_paged(after, limit)
    except _Err as e:
        raise _error(e) from None


def uids(*, after: str | None = None, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[str]:
    """Every bound uid, sorted, fetched page by page."""
    return _pages(get_uid_list_paged, page_size, after)


def uids_in_group(group: str, *, after: str | None = None, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[str]:
    """Every uid bound to a member of ``group``, sorted, fetched page by page."""
    return _pages(lambda a, n: get_uid_list_by_group_paged(group, a, n), page_size, after)


def groups(*, after: str | None = None, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[str]:
    """Every group that has members, sorted, fetched page by page."""
    return _pages(get_group_list_paged, page_size, after)


def get_client_sessions(after: str | None, limit: int) -> list[tuple[str, Session]]:
    """One page of ``(client, session)`` of connected clients, sorted by id, strictly after
    ``after``, at most ``limit``: GatewayWorker's ``getAllClientSessions``, paged."""
    try:
        return [(c, dict(s)) for c, s in _api.get_client_sessions(after, limit)]
    except _Err as e:
        raise _error(e) from None


def get_client_sessions_by_group(group: str, after: str | None,
                                 limit: int) -> list[tuple[str, Session]]:
    """Like :func:`get_client_sessions`, members of ``group`` only."""
    try:
        return [(c, dict(s)) for c, s in _api.get_client_sessions_by_group(group, after, limit)]
    except _Err as e:
        raise _error(e) from None


def _session_pages(fetch, page_size: int, after: str | None) -> Iterator[tuple[str, Session]]:
    while True:
        page = fetch(after, page_size)
        if not page:
            return
        yield from page
        after = page[-1][0]


def client_sessions(*, after: str | None = None, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[tuple[str, Session]]:
    """Every connected client's ``(client, session)``, sorted by id, fetched page by page."""
    return _session_pages(get_client_sessions, page_size, after)


def client_sessions_in_group(group: str, *, after: str | None = None,
                             page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[tuple[str, Session]]:
    """Every member of ``group`` as ``(client, session)``, sorted by id, fetched page by page."""
    return _session_pages(lambda a, n: get_client_sessions_by_group(group, a, n), page_size, after)


def get_client_count_by_groups(groups: Iterable[str]) -> dict[str, int]:
    """The member count of each of ``groups`` (at most 1000); 0 for a group without members."""
    try:
        return dict(_api.get_client_count_by_groups(list(groups)))
    except _Err as e:
        raise _error(e) from None


def get_client_ids_by_uids(uids: Iterable[str]) -> dict[str, list[str]]:
    """The sorted clients bound to each of ``uids`` (at most 1000); ``[]`` for an offline uid."""
    try:
        return dict(_api.get_client_ids_by_uids(list(uids)))
    except _Err as e:
        raise _error(e) from None


def session_json(session: Mapping[str, str] | None, key: str, default=None):
    """The session value under ``key`` parsed as JSON (PHP sessions hold arrays; here values are
    strings); ``default`` if the key is absent or not JSON."""
    text = None if session is None else session.get(key)
    if text is None:
        return default
    try:
        return _json.loads(text)
    except ValueError:
        return default


def set_session_json(client: str, key: str, value) -> None:
    """Stores ``value`` as JSON under ``key`` in the client's session, keeping the other keys."""
    update_session(client, {key: _json.dumps(value, separators=(",", ":"))})


_FIELD_FLAGS = {
    "remote_ip": _t.ClientInfoFields.REMOTE_IP,
    "remote_port": _t.ClientInfoFields.REMOTE_PORT,
    "uid": _t.ClientInfoFields.UID,
    "session": _t.ClientInfoFields.SESSION,
    "groups": _t.ClientInfoFields.GROUPS,
    "system": _t.ClientInfoFields.SYSTEM,
}


def get_client_info(client: str, fields: Iterable[InfoField]) -> ClientInfo | None:
    """The asked ``fields`` (names from :data:`INFO_FIELDS`) of what the gateway knows about
    the client; ``None`` if it is unknown."""
    if isinstance(fields, str):
        raise TypeError("fields is a collection of field names (INFO_FIELDS for all), not a str")
    flags = _t.ClientInfoFields(0)
    for name in fields:
        try:
            flags |= _FIELD_FLAGS[name]
        except KeyError:
            raise ValueError(f"unknown client info field {name!r}; known: {INFO_FIELDS}") from None
    try:
        raw = _api.get_client_info(client, flags)
    except _Err as e:
        raise _error(e) from None
    if raw is None:
        return None
    system = None
    if raw.system is not None:
        s = raw.system
        system = SystemInfo(s.protocol.name.lower(), s.connected_at_ms, s.last_active_ms,
                            s.bytes_in, s.bytes_out, s.gateway_id)
    return ClientInfo(raw.client, raw.remote_ip, raw.remote_port, raw.uid,
                      None if raw.session is None else dict(raw.session), raw.groups, system)


def close_client(client: str, force: bool = False) -> None:
    """Closes the client. ``force=False``: what was queued is flushed, then a clean close;
    ``force=True``: dropped at once. ``on_close`` follows once."""
    try:
        _api.close_client(client, force)
    except _Err as e:
        raise _error(e) from None


def close_client_with(client: str, message: Message) -> None:
    """Sends ``message``, then closes the client cleanly with the message flushed first."""
    try:
        _api.close_client_with(client, _message_to_raw(message))
    except _Err as e:
        raise _error(e) from None


def bind_uid(client: str, uid: str) -> None:
    """Binds the client to ``uid``; a client bound to another uid is moved."""
    try:
        _api.bind_uid(client, uid)
    except _Err as e:
        raise _error(e) from None


def unbind_uid(client: str) -> None:
    """Clears the client's uid; nothing happens if it has none."""
    try:
        _api.unbind_uid(client)
    except _Err as e:
        raise _error(e) from None


def join_group(client: str, group: str) -> None:
    """Makes the client a member of ``group``."""
    try:
        _api.join_group(client, group)
    except _Err as e:
        raise _error(e) from None


def leave_group(client: str, group: str) -> None:
    """Removes the client from ``group``."""
    try:
        _api.leave_group(client, group)
    except _Err as e:
        raise _error(e) from None


def ungroup(group: str) -> None:
    """Removes every membership of ``group`` on every gateway; clients stay connected."""
    try:
        _api.ungroup(group)
    except _Err as e:
        raise _error(e) from None


def set_session(client: str, session: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
    """Replaces the client's session."""
    try:
        _api.set_session(client, _session_to_raw(session))
    except _Err as e:
        raise _error(e) from None


def update_session(client: str, session: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
    """Merges into the client's session: given keys overwrite, the others stay."""
    try:
        _api.update_session(client, _session_to_raw(session))
    except _Err as e:
        raise _error(e) from None


def delete_session(client: str) -> None:
    """Empties the client's session."""
    try:
        _api.delete_session(client)
    except _Err as e:
        raise _error(e) from None


def get_session(client: str) -> Session | None:
    """The client's session: ``None`` if the client is unknown, ``{}`` if it has none."""
    try:
        raw = _api.get_session(client)
    except _Err as e:
        raise _error(e) from None
    return None if raw is None else dict(raw)


def set_timer(after_ms: int, repeat: bool = False) -> int:
    """Fires :meth:`Plugin.on_timer` on this instance after ``after_ms`` (1..=86 400 000)
    milliseconds, and every ``after_ms`` from then on if ``repeat``. Returns the timer id."""
    try:
        return _api.set_timer(after_ms, repeat)
    except _Err as e:
        raise _error(e) from None


def clear_timer(timer_id: int) -> None:
    """Cancels a timer of this instance; unknown ids are ignored."""
    _api.clear_timer(timer_id)


_LEVELS = {
    "trace": _t.LogLevel.TRACE,
    "debug": _t.LogLevel.DEBUG,
    "info": _t.LogLevel.INFO,
    "warn": _t.LogLevel.WARN,
    "error": _t.LogLevel.ERROR,
}


def log(level: LogLevel, message: str) -> None:
    """Writes a line to the host's log at ``level`` (trace, debug, info, warn, error).

    An unknown level raises :class:`ValueError` naming the valid ones."""
    try:
        raw = _LEVELS[level]
    except (KeyError, TypeError):
        raise ValueError(f"unknown log level {level!r}; valid: {', '.join(_LEVELS)}") from None
    _api.log(raw, str(message))


def trace(message: str) -> None:
    """Logs at trace level."""
    _api.log(_t.LogLevel.TRACE, message)


def debug(message: str) -> None:
    """Logs at debug level."""
    _api.log(_t.LogLevel.DEBUG, message)


def info(message: str) -> None:
    """Logs at info level."""
    _api.log(_t.LogLevel.INFO, message)


def warn(message: str) -> None:
    """Logs at warn level."""
    _api.log(_t.LogLevel.WARN, message)


def error(message: str) -> None:
    """Logs at error level."""
    _api.log(_t.LogLevel.ERROR, message)


# ------------------------------------------------------------------------------------------
# Handlers
# ------------------------------------------------------------------------------------------


class Plugin:
    """Subclass it, override the handlers you need (the others do nothing), and
    ``Events = export(YourPlugin)`` in the module you build.

    Errors: a :class:`SwitchboardError` (the API's errors, :mod:`kv`'s included) that
    escapes a handler is logged at warn as ``unhandled error in on-message: KIND: DETAIL``
    and the event ends normally, the instance and its state kept; in
    :meth:`on_websocket_connect` it also refuses the handshake with 500. Any other exception
    traps: the event is lost and the host replaces the instance. Handlers are plain
    functions: an ``async def`` handler is refused at its first call (with a log line naming
    it), since nothing would run its coroutine.

    The client-event handlers left to this class (``on_connect``, ``on_websocket_connect``,
    ``on_message``, ``on_close``) tell the host so when they first run; it then stops calling
    them for this build of the plugin, which saves a call per event (a handshake is accepted
    without one). An override that calls ``super()`` for them loses those events."""

    def on_worker_start(self, worker_id: int) -> None:
        """An instance was created (at start, scale-up, hot swap or after a failure); may set timers."""

    def on_connect(self, ctx: Context) -> None:
        """A TCP client was accepted, or a WebSocket handshake completed."""
        _api.unhandled(_api.ClientHandler.ON_CONNECT)

    def on_websocket_connect(self, ctx: Context, request: HttpRequest) -> Rejection | None:
        """A WebSocket handshake arrived; raise or return a :class:`Rejection` to refuse it."""
        _api.unhandled(_api.ClientHandler.ON_WEBSOCKET_CONNECT)
        return None

    def on_message(self, ctx: Context, message: Message) -> None:
        """One complete message arrived, byte-exact: ``str`` for text, ``bytes`` for binary."""
        _api.unhandled(_api.ClientHandler.ON_MESSAGE)

    def on_close(self, ctx: Context, bound: Bound) -> None:
        """The client is gone; ``bound`` is what it was bound to; queries about it answer offline."""
        _api.unhandled(_api.ClientHandler.ON_CLOSE)

    def on_timer(self, timer_id: int) -> None:
        """A timer set by this instance fired."""

    def on_worker_stop(self, worker_id: int) -> None:
        """The instance is being retired (stop, hot swap); it has bounded time."""


def _refuse_async(handler: str, method: str) -> None:
    why = (f"{method} is a coroutine function (async def), which a Switchboard handler cannot be: "
           "nothing would run its coroutine; make it a plain def")
    error(why)
    raise TypeError(why)


def _call(plugin: Plugin, handler: str, method: str, *args: object) -> object:
    """Calls ``plugin.METHOD(*args)`` for the WIT export ``handler``; an ``async def`` is refused
    before it runs, a coroutine returned anyway is closed and refused."""
    bound = getattr(plugin, method)
    if _inspect.iscoroutinefunction(bound):
        _refuse_async(handler, method)
    result = bound(*args)
    if _inspect.iscoroutine(result):
        result.close()
        _refuse_async(handler, method)
    return result


def _unhandled(handler: str, e: SwitchboardError) -> None:
    """The error policy: log what escaped ``handler`` at warn; the event then ends normally."""
    warn(f"unhandled error in {handler}: {e.kind}: {e.detail}")


def _run(plugin: Plugin, handler: str, method: str, *args: object) -> None:
    try:
        _call(plugin, handler, method, *args)
    except SwitchboardError as e:
        _unhandled(handler, e)


def export(plugin_class: type[Plugin]) -> type:
    """Makes the ``Events`` class componentize-py looks for from a :class:`Plugin` subclass.

    Write ``Events = export(MyPlugin)`` at the top level of the module you build. The plugin
    object is created on the instance's first event and kept for the life of the instance.
    """
    slot: list[Plugin] = []

    def plugin() -> Plugin:
        if not slot:
            slot.append(plugin_class())
        return slot[0]

    class Events(_EventsProtocol):
        def on_worker_start(self, worker_id: int) -> None:
            _run(plugin(), "on-worker-start", "on_worker_start", worker_id)

        def on_connect(self, ctx: _t.Context) -> None:
            _run(plugin(), "on-connect", "on_connect", Context._from_raw(ctx))

        def on_websocket_connect(self, ctx: _t.Context, request: _t.HttpRequest) -> None:
            req = HttpRequest(request.path, request.query, list(request.headers))
            try:
                rejection = _call(plugin(), "on-websocket-connect", "on_websocket_connect",
                                  Context._from_raw(ctx), req)
            except Rejection as r:
                rejection = r
            except SwitchboardError as e:
                # A check that failed must not let the client in.
                _unhandled("on-websocket-connect", e)
                rejection = Rejection(500, "internal error")
            if isinstance(rejection, Rejection):
                raise _Err(_t.Rejection(rejection.status, rejection.reason))

        def on_message(self, ctx: _t.Context, message: _t.Message) -> None:
            _run(plugin(), "on-message", "on_message", Context._from_raw(ctx), message.value)

        def on_close(self, ctx: _t.Context, bound: _t.Bound) -> None:
            _run(plugin(), "on-close", "on_close", Context._from_raw(ctx),
                 Bound(bound.uid, list(bound.groups)))

        def on_timer(self, id: int) -> None:
            _run(plugin(), "on-timer", "on_timer", id)

        def on_worker_stop(self, worker_id: int) -> None:
            _run(plugin(), "on-worker-stop", "on_worker_stop", worker_id)

    Events.__name__ = Events.__qualname__ = "Events"
    return Events


# The capabilities an app can be granted: submodules, imported last because they build on the
# errors above. ``switchboard_plugin.variables.get(name)``, ``switchboard_plugin.kv.get(key)`` …
from . import http, kv, variables  # noqa: E402
