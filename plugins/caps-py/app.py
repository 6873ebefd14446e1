"""Caps: the app's variables and key-value store driven by text commands (the protocol of
plugins/caps-js/README.md), so the same end-to-end test runs against every language."""

import switchboard_plugin as sb
from switchboard_plugin import http, kv, variables


def run(ctx: sb.Context, line: str) -> str:
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
    # GatewayWorker parity: a JSON session value, list sends, bulk sessions and counts.
    if command == "nick":
        sb.set_session_json(ctx.client, "profile", {"nick": key, "rooms": ["lobby"]})
        sb.join_group(ctx.client, "caps")
        sb.bind_uid(ctx.client, key)
        return "ok"
    if command == "who":
        seen = []
        for _, session in sb.get_client_sessions_by_group("caps", None, 10):
            profile = sb.session_json(session, "profile", {})
            seen.append(f"{profile.get('nick')}@{profile.get('rooms', [None])[0]}")
        counts = sb.get_client_count_by_groups(["caps", "none"])
        ids = sb.get_client_ids_by_uids([key])
        return f"{counts['caps']}+{counts['none']} {','.join(seen)} {','.join(sb.uids())} {len(ids[key])}"
    if command == "notice":
        sb.send_to_uids(sb.get_uid_list_paged(None, 1000), f"{key} {value}".strip())
        sb.send_to_groups(["caps"], "to caps", [ctx.client])
        sb.send_to_clients([ctx.client, ctx.client], "to me")
        return "ok"
    if command == "bye":
        sb.close_client_with(ctx.client, key)
        return "ok"
    return f"unknown command {command}"


class Caps(sb.Plugin):
    """Answers each text message with the outcome of its command."""

    def on_message(self, ctx: sb.Context, message: sb.Message) -> None:
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        try:
            reply = run(ctx, text)
        except sb.SwitchboardError as e:
            reply = f"error {e.kind}"
        ctx.reply(reply)


Events = sb.export(Caps)
