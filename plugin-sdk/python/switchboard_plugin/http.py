"""Outbound HTTP requests, through ``wasi:http/outgoing-handler``.

The host sends a request only if its scheme, host and port are in the app's
``allowed_outbound_hosts``; any other raises :class:`Denied`. Each request is bounded by the
app's ``outbound_timeout_ms`` (and by ``timeout_ms`` if shorter): past it, :class:`Timeout`.
Waiting for the network does not count against the event's CPU deadline.

::

    from switchboard_plugin import http

    response = http.get("http://127.0.0.1:8000/check?token=abc")
    if response.status == 200:
        uid = response.text()
    http.request("POST", "https://api.example.com/items", body=b"{}",
                 headers={"content-type": "application/json"})
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping

from componentize_py_types import Err as _Err
from wit_world.imports import outgoing_handler as _handler
from wit_world.imports import streams as _streams
from wit_world.imports import wasi_http_types as _h

from . import SwitchboardError

_WRITE_CHUNK = 4096
_READ_CHUNK = 64 * 1024


class HttpError(SwitchboardError):
    """An outbound request failed."""

    kind = "http"


class Denied(HttpError):
    """The destination is not in the app's ``allowed_outbound_hosts``."""

    kind = "denied"


class Timeout(HttpError):
    """The request took longer than the app's ``outbound_timeout_ms`` (or ``timeout_ms``)."""

    kind = "timeout"


class InvalidUrl(HttpError):
    """The URL is not ``http://`` or ``https://`` followed by a host."""

    kind = "invalid-url"


_TIMEOUTS = (
    _h.ErrorCode_ConnectionTimeout,
    _h.ErrorCode_ConnectionReadTimeout,
    _h.ErrorCode_ConnectionWriteTimeout,
    _h.ErrorCode_DnsTimeout,
)


def _from_code(code) -> HttpError:
    if isinstance(code, _h.ErrorCode_HttpRequestDenied):
        return Denied("the destination is not in this app's allowed_outbound_hosts")
    if isinstance(code, _TIMEOUTS):
        return Timeout(type(code).__name__.replace("ErrorCode_", ""))
    return HttpError(type(code).__name__.replace("ErrorCode_", ""))


def _stream_error(err: _Err) -> HttpError:
    value = err.value
    if isinstance(value, _streams.StreamError_LastOperationFailed):
        code = _h.http_error_code(value.value)
        if code is not None:
            return _from_code(code)
        return HttpError(value.value.to_debug_string())
    return HttpError("the connection closed early")


@dataclass
class Response:
    """A response: its status, headers (names in lowercase) and whole body."""

    status: int
    headers: list[tuple[str, bytes]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), as text."""
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v.decode("utf-8", "replace")
        return None

    def text(self) -> str:
        """The body as text (invalid UTF-8 replaced)."""
        return self.body.decode("utf-8", "replace")


_METHODS = {
    "GET": _h.Method_Get,
    "HEAD": _h.Method_Head,
    "POST": _h.Method_Post,
    "PUT": _h.Method_Put,
    "DELETE": _h.Method_Delete,
    "OPTIONS": _h.Method_Options,
    "PATCH": _h.Method_Patch,
}


def _split(url: str):
    scheme, sep, rest = url.partition("://")
    schemes = {"http": _h.Scheme_Http(), "https": _h.Scheme_Https()}
    if not sep or scheme.lower() not in schemes:
        raise InvalidUrl(f"{url!r} is not http(s)://host[:port][/path]")
    cut = min([i for i in (rest.find("/"), rest.find("?")) if i >= 0], default=len(rest))
    authority, path = rest[:cut], rest[cut:] or "/"
    if not authority:
        raise InvalidUrl(f"{url!r} has no host")
    return schemes[scheme.lower()], authority, path


def request(
    method: str,
    url: str,
    body: bytes | str = b"",
    headers: Mapping[str, str] | None = None,
    timeout_ms: int | None = None,
) -> Response:
    """Sends a request and reads the whole response."""
    scheme, authority, path = _split(url)
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    pairs = [(k.lower(), v.encode("utf-8")) for k, v in (headers or {}).items()]
    try:
        fields = _h.Fields.from_list(pairs)
    except _Err as e:
        raise HttpError(f"invalid header: {e.value}") from None
    outgoing = _h.OutgoingRequest(fields)
    upper = method.upper()
    outgoing.set_method(_METHODS[upper]() if upper in _METHODS else _h.Method_Other(upper))
    outgoing.set_scheme(scheme)
    outgoing.set_authority(authority)
    outgoing.set_path_with_query(path)
    options = None
    if timeout_ms is not None:
        ns = int(timeout_ms) * 1_000_000
        options = _h.RequestOptions()
        for setter in (options.set_connect_timeout, options.set_first_byte_timeout,
                       options.set_between_bytes_timeout):
            try:
                setter(ns)
            except _Err:
                pass  # the host's own bound still holds
    outgoing_body = outgoing.body()
    try:
        pending = _handler.handle(outgoing, options)
    except _Err as e:
        raise _from_code(e.value) from None
    # The request goes first and the body after: the host buffers little of a body.
    stream = outgoing_body.write()
    try:
        for i in range(0, len(data), _WRITE_CHUNK):
            stream.blocking_write_and_flush(data[i:i + _WRITE_CHUNK])
    except _Err as e:
        raise _stream_error(e) from None
    stream.__exit__(None, None, None)
    try:
        _h.OutgoingBody.finish(outgoing_body, None)
    except _Err as e:
        raise _from_code(e.value) from None
    pending.subscribe().block()
    # None: not ready (it is, after the block); Err: taken before; inside, the outcome.
    ready = pending.get()
    if ready is None or isinstance(ready, _Err):
        raise HttpError("the response was not ready")
    outcome = ready.value
    if isinstance(outcome, _Err):
        raise _from_code(outcome.value)
    response = outcome.value
    status = response.status()
    response_headers = [(n, bytes(v)) for n, v in response.headers().entries()]
    incoming = response.consume()
    reader = incoming.stream()
    chunks = []
    while True:
        try:
            chunks.append(bytes(reader.blocking_read(_READ_CHUNK)))
        except _Err as e:
            if isinstance(e.value, _streams.StreamError_Closed):
                break
            raise _stream_error(e) from None
    reader.__exit__(None, None, None)
    _h.IncomingBody.finish(incoming)
    return Response(status, response_headers, b"".join(chunks))


def get(url: str, timeout_ms: int | None = None) -> Response:
    """``GET url``."""
    return request("GET", url, timeout_ms=timeout_ms)


def post(url: str, body: bytes | str, timeout_ms: int | None = None) -> Response:
    """``POST url`` with ``body``."""
    return request("POST", url, body=body, timeout_ms=timeout_ms)
