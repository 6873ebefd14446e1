"""Chat: rooms, nicknames and private messages; the protocol is in plugins/chat/README.md and
this plugin behaves exactly like the Rust one there.

All state lives on the gateways, so any instance (or a hot-swapped version) can serve any
client: the nick is the session key ``nick`` and the client's uid, the current room is the
session key ``room`` and a group membership. Each room's last messages are in the app's
key-value store (see :class:`History`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import switchboard_plugin as sb

NICK = "nick"
ROOM = "room"
MAX_NICK = 32
MAX_ROOM = 64
HELP = "commands: /nick NAME, /join ROOM, /leave [ROOM], /who, /msg NICK TEXT, /history, /help"
KEPT = 50
"""Messages kept per room."""
SPACE = " \t\r\n\f\v"
"""What separates a command from its argument, and is trimmed around a message: ASCII
whitespace (space, tab, CR, LF, form feed, vertical tab), the same in every chat port."""


def display_name(session: sb.Session, client: str) -> str:
    """The name shown for a client: its nick, or its client id if it has none."""
    nick = session.get(NICK)
    return nick if nick else client


def valid_name(name: str, max_len: int) -> bool:
    """1..=max_len characters, none of them whitespace or control characters."""
    return 0 < len(name) <= max_len and not any(
        c.isspace() or unicodedata.category(c) == "Cc" for c in name
    )


def split_once(text: str) -> list[str] | None:
    """Splits at the first ASCII whitespace character."""
    for i, c in enumerate(text):
        if c in SPACE:
            return [text[:i], text[i + 1:]]
    return None


def check(f: Callable[[], object]) -> None:
    """Chat replies are best effort: a failed API call is logged."""
    try:
        f()
    except sb.SwitchboardError as e:
        sb.warn(f"chat: {e}")


def uid_online(uid: str) -> bool:
    try:
        return sb.is_uid_online(uid)
    except sb.SwitchboardError:
        return False


class History:
    """Each room's last ``KEPT`` messages, so they outlive the instances, a restart and a hot swap.

    Instances run side by side, so there is no read-modify-write of a list: a message takes the
    room's next number from an atomic increment and goes to slot ``number % KEPT`` with its
    number in front; reading keeps the slots of the last ``KEPT`` numbers whose number matches.
    """

    @staticmethod
    def _seq_key(room: str) -> str:
        return f"history:{room}:seq"

    @staticmethod
    def _slot_key(room: str, seq: int) -> str:
        return f"history:{room}:{seq % KEPT:02}"

    @classmethod
    def record(cls, room: str, line: str) -> None:
        """Records ``line`` as the room's newest message."""
        seq = sb.kv.increment(cls._seq_key(room))
        sb.kv.set(cls._slot_key(room, seq), f"{seq}\n{line}")

    @classmethod
    def recent(cls, room: str) -> list[str]:
        """The room's last messages, oldest first."""
        stored_last = sb.kv.get_string(cls._seq_key(room))
        last = int(stored_last) if stored_last and stored_last.strip().isdigit() else 0
        lines = []
        for seq in range(max(1, last - KEPT + 1), last + 1):
            number, _, line = (sb.kv.get_string(cls._slot_key(room, seq)) or "").partition("\n")
            if number == str(seq):
                lines.append(line)
        return lines


class Client:
    """What one event needs to know about its client."""

    def __init__(self, client: str, session: sb.Session) -> None:
        self.id = client
        self.session = session

    def name(self) -> str:
        return display_name(self.session, self.id)

    def room(self) -> str | None:
        return self.session.get(ROOM) or None

    def reply(self, line: str) -> None:
        check(lambda: sb.send_to_client(self.id, line))

    def nick(self, nick: str) -> None:
        if not valid_name(nick, MAX_NICK):
            return self.reply(f"error: invalid nick (1 to {MAX_NICK} characters, no spaces)")
        old = self.name()
        if self.session.get(NICK) != nick and uid_online(nick):
            return self.reply(f"error: nick {nick} is taken")
        # Recorded only once the uid is bound: a nick the gateway did not take is no nick.
        try:
            sb.bind_uid(self.id, nick)
            sb.update_session(self.id, {NICK: nick})
        except sb.SwitchboardError as e:
            return self.reply(f"error: could not take nick {nick}: {e}")
        self.session[NICK] = nick
        self.reply(f"* you are now known as {nick}")
        room = self.room()
        if room is not None and old != nick:
            check(lambda: sb.send_to_group(room, f"* {old} is now known as {nick}", [self.id]))

    def join(self, room: str) -> None:
        if not valid_name(room, MAX_ROOM):
            return self.reply(f"error: invalid room (1 to {MAX_ROOM} characters, no spaces)")
        if self.room() == room:
            return self.reply(f"error: you are already in {room}")
        old = self.room()
        if old is not None:
            self.leave_room(old)
        # Recorded only once the membership exists: a room not joined is no room.
        try:
            sb.join_group(self.id, room)
            sb.update_session(self.id, {ROOM: room})
        except sb.SwitchboardError as e:
            self.session.pop(ROOM, None)
            return self.reply(f"error: could not join {room}: {e}")
        self.session[ROOM] = room
        check(lambda: sb.send_to_group(room, f"* {self.name()} joined {room}"))
        self.replay(room, False)

    def replay(self, room: str, always: bool) -> None:
        """Sends the room's last messages to this client; ``always``: even when there are none."""
        try:
            lines = History.recent(room)
        except sb.SwitchboardError as e:
            return self.reply(f"error: history unavailable: {e}")
        if not lines and not always:
            return None
        self.reply(f"* last {len(lines)} messages in {room}:")
        for line in lines:
            self.reply(f"[history] {line}")
        return None

    def history(self) -> None:
        room = self.room()
        if room is None:
            return self.reply("error: you are not in a room")
        return self.replay(room, True)

    def leave(self, room: str | None) -> None:
        current = self.room()
        if room is None and current is None:
            return self.reply("error: you are not in a room")
        if room is not None and current != room:
            return self.reply(f"error: you are not in {room}")
        assert current is not None
        self.leave_room(current)
        session = dict(self.session)
        session.pop(ROOM, None)
        check(lambda: sb.set_session(self.id, session))
        self.session = session

    def leave_room(self, room: str) -> None:
        """Announces the departure to the room (the leaver included) and leaves it."""
        check(lambda: sb.send_to_group(room, f"* {self.name()} left {room}"))
        check(lambda: sb.leave_group(self.id, room))

    def who(self) -> None:
        room = self.room()
        if room is None:
            return self.reply("error: you are not in a room")
        names = []
        try:
            for member in sb.clients_in_group(room):
                try:
                    session = sb.get_session(member) or {}
                except sb.SwitchboardError:
                    session = {}
                names.append(display_name(session, member))
        except sb.SwitchboardError as e:
            return self.reply(f"error: {e}")
        names.sort()  # code point order, which is the byte order of UTF-8
        self.reply(f"* in {room} ({len(names)}): {', '.join(names)}")

    def msg(self, args: str) -> None:
        parts = split_once(args)
        if parts is None:
            return self.reply("error: usage: /msg NICK TEXT")
        nick, text = parts[0], parts[1].strip(SPACE)
        if not nick or not text:
            return self.reply("error: usage: /msg NICK TEXT")
        if not uid_online(nick):
            return self.reply(f"error: no such nick {nick}")
        check(lambda: sb.send_to_uid(nick, f"[private] {self.name()}: {text}"))
        self.reply(f"[private to {nick}] {text}")

    def say(self, text: str) -> None:
        room = self.room()
        if room is None:
            return self.reply("error: you are not in a room; /join ROOM first")
        line = f"{self.name()}: {text}"
        try:
            History.record(room, line)
        except sb.SwitchboardError as e:
            sb.warn(f"chat: history not kept: {e}")
        check(lambda: sb.send_to_group(room, line))

    def handle(self, line: str) -> None:
        line = line.strip(SPACE)
        if not line:
            return
        if not line.startswith("/"):
            return self.say(line)
        command = line[1:]
        parts = split_once(command)
        name, args = (command, "") if parts is None else (parts[0], parts[1].strip(SPACE))
        if name == "nick":
            return self.reply("error: usage: /nick NAME") if not args else self.nick(args)
        if name == "join":
            return self.reply("error: usage: /join ROOM") if not args else self.join(args)
        if name == "leave":
            return self.leave(args or None)
        if name == "who":
            return self.who()
        if name == "msg":
            return self.msg(args)
        if name == "history":
            return self.history()
        if name == "help":
            return self.reply(f"* {HELP}")
        return self.reply(f"error: unknown command /{name}; {HELP}")


class Chat(sb.Plugin):
    """The chat plugin; it keeps no state of its own."""

    def on_message(self, ctx: sb.Context, message: sb.Message) -> None:
        if not isinstance(message, str):
            return check(lambda: ctx.reply("error: binary messages are not supported"))
        # The context's session is a snapshot taken when the message left the gateway, which
        # may predate the previous command's changes: read the current one.
        try:
            session = sb.get_session(ctx.client)
        except sb.SwitchboardError:
            session = None
        Client(ctx.client, session if session is not None else dict(ctx.session)).handle(message)

    def on_close(self, ctx: sb.Context, bound: sb.Bound) -> None:
        name = bound.uid if bound.uid is not None else display_name(ctx.session, ctx.client)
        for room in bound.groups:
            check(lambda: sb.send_to_group(room, f"* {name} left {room} (disconnected)"))


Events = sb.export(Chat)
