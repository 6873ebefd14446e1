"""Probe in Python: the probe's JSON protocol (plugins/probe/README.md) over the Python SDK.

Strings are passed to the host unvalidated, so the tests see what the host accepts and refuses
through this SDK. Replies are ``{"id", "ok"}`` or ``{"id", "err": {"kind", "detail"}}``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import switchboard_plugin as sb

OBSERVERS = "observers"
"""The group that gets ``close`` and ``timer`` event notices."""

U32 = 4294967295
U64 = 18446744073709551615
FIELD_NAMES = {
    "remote_ip": "remote_ip", "remote-ip": "remote_ip", "remote_port": "remote_port",
    "remote-port": "remote_port", "uid": "uid", "session": "session", "groups": "groups",
    "system": "system",
}


class Failure(Exception):
    """The request itself is malformed (kind ``bad-request``), or the command is left out."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def bad(detail: str) -> Failure:
    return Failure("bad-request", detail)


class Args:
    """Reads request arguments; ``null`` counts as absent."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.request = request

    def get(self, name: str) -> Any:
        return self.request.get(name)

    def str(self, name: str) -> str:
        v = self.get(name)
        if v is None:
            raise bad(f"`{name}` is missing")
        if not isinstance(v, str):
            raise bad(f"`{name}` must be a string")
        return v

    def opt_str(self, name: str) -> str | None:
        return None if self.get(name) is None else self.str(name)

    def bool(self, name: str, default: bool | None = None) -> bool:
        v = self.get(name)
        if v is None:
            if default is None:
                raise bad(f"`{name}` is missing")
            return default
        if not isinstance(v, bool):
            raise bad(f"`{name}` must be a boolean")
        return v

    def uint(self, name: str, top: int) -> int:
        v = self.get(name)
        if v is None:
            raise bad(f"`{name}` is missing")
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= top:
            raise bad(f"`{name}` must be an integer 0..={top}")
        return v

    def strings(self, name: str) -> list[str]:
        v = self.get(name)
        if v is None:
            return []
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise bad(f"`{name}` must be an array of strings")
        return v

    def message(self, name: str) -> sb.Message:
        v = self.get(name)
        if v is None:
            raise bad(f"`{name}` is missing")
        if isinstance(v, str):
            return v
        if isinstance(v, dict):
            if isinstance(v.get("text"), str) and "binary" not in v:
                return v["text"]
            binary = v.get("binary")
            if isinstance(binary, list) and "text" not in v:
                if not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in binary):
                    raise bad("`binary` must be an array of bytes (0..=255)")
                return bytes(binary)
        raise bad('a message is {"text": string} or {"binary": [bytes]}')

    def session(self, name: str) -> dict[str, str]:
        v = self.get(name)
        if not isinstance(v, dict):
            raise bad(f"`{name}` must be an object of strings")
        if not all(isinstance(s, str) for s in v.values()):
            raise bad(f"`{name}` values must be strings")
        return v

    def fields(self, name: str) -> tuple[sb.InfoField, ...]:
        v = self.get(name)
        if v is None or v == "all":
            return sb.INFO_FIELDS
        if isinstance(v, int) and not isinstance(v, bool):
            if not 0 <= v <= 255:
                raise bad(f"`{name}` as a number must be 0..=255")
            return tuple(f for bit, f in enumerate(sb.INFO_FIELDS) if v & (1 << bit))
        if isinstance(v, list):
            out = []
            for f in v:
                if not isinstance(f, str) or f not in FIELD_NAMES:
                    raise bad(f"unknown field {json.dumps(f)} in `{name}`")
                out.append(FIELD_NAMES[f])
            return tuple(out)
        raise bad(f'`{name}` must be "all", an array of field names or a number')


def pairs(session: dict[str, str]) -> Iterator[tuple[str, str]]:
    """The session as a generator of pairs: the SDK takes any iterable of them."""
    yield from session.items()


def info_json(info: sb.ClientInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"client": info.client}
    for key in ("remote_ip", "remote_port", "uid", "session", "groups"):
        value = getattr(info, key)
        if value is not None:
            out[key] = value
    if info.system is not None:
        s = info.system
        out["system"] = {
            "protocol": s.protocol, "connected_at_ms": s.connected_at_ms,
            "last_active_ms": s.last_active_ms, "bytes_in": s.bytes_in, "bytes_out": s.bytes_out,
            "gateway_id": s.gateway_id,
        }
    return out


def notify_observers(event: dict[str, Any]) -> None:
    try:
        sb.send_to_group(OBSERVERS, json.dumps(event))
    except sb.SwitchboardError as e:
        sb.warn(f"probe: notifying observers: {e}")


class Probe(sb.Plugin):
    """The probe's state: the last worker id, and how many ``unhandled`` requests it saw."""

    def __init__(self) -> None:
        self.worker: int | None = None
        self.unhandled = 0

    def run(self, ctx: sb.Context, op: str, a: Args) -> Any:  # noqa: C901 (one branch per op)
        """Runs one request; returns the ``ok`` value, raises a Failure or SwitchboardError."""
        if op == "send-to-client":
            return sb.send_to_client(a.str("client"), a.message("message"))
        if op == "send-to-uid":
            return sb.send_to_uid(a.str("uid"), a.message("message"), a.strings("without"))
        if op == "send-to-group":
            return sb.send_to_group(a.str("group"), a.message("message"), a.strings("without"))
        if op == "send-to-all":
            return sb.send_to_all(a.message("message"), a.strings("without"))
        if op == "send-to-uids":
            return sb.send_to_uids(a.strings("uids"), a.message("message"), a.strings("without"))
        if op == "send-to-groups":
            return sb.send_to_groups(a.strings("groups"), a.message("message"), a.strings("without"))
        if op == "send-to-clients":
            return sb.send_to_clients(a.strings("clients"), a.message("message"))
        if op == "is-online":
            return sb.is_online(a.str("client"))
        if op == "is-uid-online":
            return sb.is_uid_online(a.str("uid"))
        if op == "get-client-count":
            return sb.get_client_count()
        if op == "get-client-count-by-group":
            return sb.get_client_count_by_group(a.str("group"))
        if op == "get-uid-count-by-group":
            return sb.get_uid_count_by_group(a.str("group"))
        if op == "get-uid-count":
            p = a.get("unique_percent")
            if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float))):
                raise bad("`unique_percent` must be a number or null")
            return sb.get_uid_count(None if p is None else float(p))
        if op == "get-client-list":
            return sb.get_client_list(a.opt_str("after"), a.uint("limit", U32))
        if op == "get-client-list-by-group":
            return sb.get_client_list_by_group(a.str("group"), a.opt_str("after"), a.uint("limit", U32))
        if op == "get-client-list-by-uid":
            return sb.get_client_list_by_uid(a.str("uid"), a.opt_str("after"), a.uint("limit", U32))
        if op == "get-uid-list":
            return sb.get_uid_list(a.bool("unique"))
        if op == "get-uid-list-by-group":
            return sb.get_uid_list_by_group(a.str("group"), a.bool("unique"))
        if op == "get-group-list":
            return sb.get_group_list(a.bool("unique"))
        if op == "get-uid-list-paged":
            return sb.get_uid_list_paged(a.opt_str("after"), a.uint("limit", U32))
        if op == "get-uid-list-by-group-paged":
            return sb.get_uid_list_by_group_paged(a.str("group"), a.opt_str("after"), a.uint("limit", U32))
        if op == "get-group-list-paged":
            return sb.get_group_list_paged(a.opt_str("after"), a.uint("limit", U32))
        if op == "get-client-sessions":
            return sb.get_client_sessions(a.opt_str("after"), a.uint("limit", U32))
        if op == "get-client-sessions-by-group":
            return sb.get_client_sessions_by_group(a.str("group"), a.opt_str("after"), a.uint("limit", U32))
        if op == "get-client-count-by-groups":
            return sb.get_client_count_by_groups(a.strings("groups"))
        if op == "get-client-ids-by-uids":
            return sb.get_client_ids_by_uids(a.strings("uids"))
        if op == "get-client-info":
            info = sb.get_client_info(a.str("client"), a.fields("fields"))
            return None if info is None else info_json(info)
        if op == "close-client":
            return sb.close_client(a.str("client"), a.bool("force", False))
        if op == "close-client-with":
            return sb.close_client_with(a.str("client"), a.message("message"))
        if op == "bind-uid":
            return sb.bind_uid(a.str("client"), a.str("uid"))
        if op == "unbind-uid":
            return sb.unbind_uid(a.str("client"))
        if op == "join-group":
            return sb.join_group(a.str("client"), a.str("group"))
        if op == "leave-group":
            return sb.leave_group(a.str("client"), a.str("group"))
        if op == "ungroup":
            return sb.ungroup(a.str("group"))
        if op == "set-session":
            return sb.set_session(a.str("client"), pairs(a.session("session")))
        if op == "update-session":
            return sb.update_session(a.str("client"), a.session("session"))
        if op == "delete-session":
            return sb.delete_session(a.str("client"))
        if op == "get-session":
            return sb.get_session(a.str("client"))
        if op == "set-timer":
            return sb.set_timer(a.uint("after_ms", U64), a.bool("repeat", False))
        if op == "clear-timer":
            return sb.clear_timer(a.uint("timer", U64))
        if op == "log":
            # The level goes to the SDK unchecked: its ValueError is the answer to a bad one.
            try:
                return sb.log(a.str("level"), a.str("message"))  # type: ignore[arg-type]
            except ValueError as e:
                raise bad(str(e)) from None
        if op == "print":
            # Plain WASI output: the host logs stdout at info and stderr at warn.
            text = a.str("message")
            print(text, flush=True)
            print(f"{text} (stderr)", file=sys.stderr, flush=True)
            return None
        if op == "whoami":
            return {"client": ctx.client, "remote_addr": ctx.remote_addr,
                    "gateway_id": ctx.gateway_id, "uid": ctx.uid, "session": ctx.session}
        if op == "echo":
            return ctx.reply(a.message("message"))
        if op == "worker":
            return self.worker
        if op == "unhandled":
            self.unhandled += 1
            # No try: the SDK's error policy logs what escapes and keeps the instance.
            sb.send_to_client(a.str("client"), "x")
            return None
        if op == "counter":
            return self.unhandled
        if op == "var":
            return sb.variables.get(a.str("name"))
        if op == "kv-get":
            return sb.kv.get_string(a.str("key"))
        if op == "kv-set":
            ttl = a.get("ttl_ms")
            return sb.kv.set(a.str("key"), a.str("value"), None if ttl is None else a.uint("ttl_ms", U64))
        if op == "kv-set-bytes":
            return sb.kv.set(a.str("key"), b"x" * a.uint("len", 1 << 30))
        if op == "kv-delete":
            return sb.kv.delete(a.str("key"))
        if op == "kv-incr":
            delta = a.get("delta")
            return sb.kv.increment(a.str("key"), delta if isinstance(delta, int) else 1)
        if op == "kv-keys":
            return list(sb.kv.keys(a.str("prefix")))
        if op == "repeat":
            n = a.uint("n", U64)
            request = a.get("request")
            if not isinstance(request, dict):
                raise bad("`request` must be an object")
            if not isinstance(request.get("op"), str):
                raise bad("`request.op` must be a string")
            started = time.perf_counter()
            for _ in range(n):
                self.run(ctx, request["op"], Args(request))
            return {"n": n, "elapsed_us": int((time.perf_counter() - started) * 1e6)}
        if op == "busy":
            until = time.monotonic() + a.uint("ms", U64) / 1000
            i = 0
            while time.monotonic() < until:
                i += 1
            return i > 0
        if op == "spin":
            while True:
                pass
        if op == "trap":
            raise RuntimeError("probe: trap requested")
        if op in ("http", "read-file", "connect", "env", "alloc"):
            raise Failure("unsupported", f"{op} is not implemented by probe-py")
        raise bad(f'unknown op "{op}"')

    def request(self, ctx: sb.Context, text: str) -> dict[str, Any]:
        """The reply to one JSON request; the API error of ``unhandled`` escapes instead."""
        try:
            request = json.loads(text)
        except ValueError as e:
            return {"id": None, "err": {"kind": "bad-request", "detail": f"invalid JSON: {e}"}}
        if not isinstance(request, dict):
            return {"id": None, "err": {"kind": "bad-request", "detail": "a request is a JSON object"}}
        rid = request.get("id")
        op = request.get("op")
        if not isinstance(op, str):
            return {"id": rid, "err": {"kind": "bad-request", "detail": "`op` must be a string"}}
        try:
            return {"id": rid, "ok": self.run(ctx, op, Args(request))}
        except sb.SwitchboardError as e:
            if op == "unhandled":
                raise
            return {"id": rid, "err": {"kind": e.kind, "detail": e.detail}}
        except Failure as e:
            return {"id": rid, "err": {"kind": e.kind, "detail": e.detail}}

    def on_worker_start(self, worker_id: int) -> None:
        self.worker = worker_id
        sb.info(f"probe: worker {worker_id} started")

    def on_worker_stop(self, worker_id: int) -> None:
        sb.info(f"probe: worker {worker_id} stopping")

    def on_websocket_connect(self, ctx: sb.Context, request: sb.HttpRequest) -> sb.Rejection | None:
        # `?bind=U&join=G&greet=T&nick=N`: act on the client before the verdict; a rejection
        # undoes all of it.
        acts = (
            ("bind", lambda uid: sb.bind_uid(ctx.client, uid)),
            ("join", lambda group: sb.join_group(ctx.client, group)),
            ("greet", ctx.reply),
            ("nick", lambda nick: sb.set_session_json(ctx.client, "nick", nick)),
        )
        for param, act in acts:
            value = request.query_param(param)
            if value is None:
                continue
            try:
                act(value)
            except sb.SwitchboardError as e:
                sb.warn(f"probe: on-websocket-connect: {e}")
        if request.query_param("fail") is not None:
            # An API error left to the SDK's policy: logged, the handshake refused with 500.
            sb.send_to_client("nope", "x")
        status = request.query_param("reject")
        if status is None:
            return None
        code = int(status) if status.isascii() and status.isdigit() and int(status) <= 65535 else 403
        return sb.Rejection(code, "rejected by probe")

    def on_message(self, ctx: sb.Context, message: sb.Message) -> None:
        if isinstance(message, str) and message.lstrip().startswith("{"):
            ctx.reply(json.dumps(self.request(ctx, message)))
        else:
            ctx.reply(message)

    def on_close(self, ctx: sb.Context, bound: sb.Bound) -> None:
        notify_observers({"event": "close", "client": ctx.client, "uid": bound.uid,
                          "groups": bound.groups, "session": ctx.session})

    def on_timer(self, timer_id: int) -> None:
        notify_observers({"event": "timer", "timer": timer_id})


Events = sb.export(Probe)
