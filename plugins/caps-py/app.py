"""Caps: the app's variables and key-value store driven by text commands (the protocol of
plugins/caps-js/README.md), so the same end-to-end test runs against every language."""

import switchboard as sb
from switchboard import http, kv, variables


def run(line: str) -> str:
    command, _, rest = line.partition(" ")
    key, _, value = rest.partition(" ")
    if command == "var":
        found = variables.get(key)
        return "(none)" if found is None else found
    if command == "set":
        kv.set(key, value)
        return "ok"
    if command == "setttl":
        ms, _, text = value.partition(" ")
        kv.set(key, text, ttl_ms=int(ms))
        return "ok"
    if command == "get":
        found = kv.get_string(key)
        return "(none)" if found is None else found
    if command == "del":
        kv.delete(key)
        return "ok"
    if command == "incr":
        return str(kv.increment(key, int(value) if value else 1))
    if command == "keys":
        return ",".join(kv.keys(key))
    if command == "http":
        response = http.get(key)
        return f"{response.status} {response.text()}"
    return f"unknown command {command}"


class Caps(sb.Plugin):
    """Answers each text message with the outcome of its command."""

    def on_message(self, ctx: sb.Context, message: sb.Message) -> None:
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        try:
            reply = run(text)
        except sb.SwitchboardError as e:
            reply = f"error {e.kind}"
        ctx.reply(reply)


Events = sb.export(Caps)
