// Chat: rooms, nicknames and private messages; the protocol is in plugins/chat/README.md and
// this plugin behaves exactly like the Rust one there.
//
// All state lives on the gateways, so any instance (or a hot-swapped version) can serve any
// client: the nick is the session key `nick` and the client's uid, the current room is the
// session key `room` and a group membership. Each room's last messages are in the app's
// key-value store (see `history` below).
import * as sb from "switchboard-sdk";

const NICK = "nick";
const ROOM = "room";
const MAX_NICK = 32;
const MAX_ROOM = 64;
const HELP = "commands: /nick NAME, /join ROOM, /leave [ROOM], /who, /msg NICK TEXT, /history, /help";
/** Messages kept per room. */
const KEPT = 50;

// Unicode whitespace, which no nick or room name may hold.
const WHITESPACE = /\s/u;
const CONTROL = /\p{Cc}/u;
// What separates a command from its argument, and is trimmed around a message: ASCII
// whitespace (space, tab, CR, LF, form feed, vertical tab), the same in every chat port.
const SPACE = /[ \t\r\n\f\v]/;
const trimSpace = (text) => text.replace(/^[ \t\r\n\f\v]+|[ \t\r\n\f\v]+$/g, "");

/** The name shown for a client: its nick, or its client id if it has none. */
function displayName(session, client) {
  const nick = session[NICK];
  return nick ? nick : client;
}

/** 1..=max characters, none of them whitespace or control characters. */
function validName(name, max) {
  const chars = [...name];
  return chars.length > 0 && chars.length <= max && !chars.some((c) => WHITESPACE.test(c) || CONTROL.test(c));
}

/** Byte order of the UTF-8 encodings, which is code point order. */
function byteOrder(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** Splits at the first ASCII whitespace character: [head, rest] or null. */
function splitOnce(text) {
  const m = SPACE.exec(text);
  return m ? [text.slice(0, m.index), text.slice(m.index + m[0].length)] : null;
}

/** Chat replies are best effort: a failed API call is logged. */
function check(f) {
  try {
    f();
  } catch (e) {
    if (!(e instanceof sb.SwitchboardError)) throw e;
    sb.warn(`chat: ${e.message}`);
  }
}

// Each room's last KEPT messages, so they outlive the instances, a restart and a hot swap.
// Instances run side by side, so there is no read-modify-write of a list: a message takes the
// room's next number from an atomic increment and goes to slot `number % KEPT` with its number
// in front; reading keeps the slots of the last KEPT numbers whose number matches.
const history = {
  seqKey: (room) => `history:${room}:seq`,
  slotKey: (room, seq) => `history:${room}:${String(seq % KEPT).padStart(2, "0")}`,

  /** Records `line` as the room's newest message. */
  record(room, line) {
    const seq = Number(sb.kv.increment(this.seqKey(room)));
    sb.kv.set(this.slotKey(room, seq), `${seq}\n${line}`);
  },

  /** The room's last messages, oldest first. */
  recent(room) {
    const last = Number.parseInt(sb.kv.getString(this.seqKey(room)) ?? "0", 10) || 0;
    const lines = [];
    for (let seq = Math.max(1, last - KEPT + 1); seq <= last; seq++) {
      const stored = sb.kv.getString(this.slotKey(room, seq));
      const cut = stored === null ? -1 : stored.indexOf("\n");
      if (cut >= 0 && stored.slice(0, cut) === String(seq)) lines.push(stored.slice(cut + 1));
    }
    return lines;
  },
};

class Client {
  constructor(id, session) {
    this.id = id;
    this.session = session;
  }

  name() {
    return displayName(this.session, this.id);
  }

  room() {
    return this.session[ROOM] ? this.session[ROOM] : null;
  }

  reply(line) {
    check(() => sb.sendToClient(this.id, line));
  }

  nick(nick) {
    if (!validName(nick, MAX_NICK)) {
      return this.reply(`error: invalid nick (1 to ${MAX_NICK} characters, no spaces)`);
    }
    const old = this.name();
    if (this.session[NICK] !== nick && isUidOnline(nick)) {
      return this.reply(`error: nick ${nick} is taken`);
    }
    // Recorded only once the uid is bound: a nick the gateway did not take is no nick.
    try {
      sb.bindUid(this.id, nick);
      sb.updateSession(this.id, { [NICK]: nick });
    } catch (e) {
      if (!(e instanceof sb.SwitchboardError)) throw e;
      return this.reply(`error: could not take nick ${nick}: ${e.message}`);
    }
    this.session[NICK] = nick;
    this.reply(`* you are now known as ${nick}`);
    const room = this.room();
    if (room !== null && old !== nick) {
      check(() => sb.sendToGroup(room, `* ${old} is now known as ${nick}`, [this.id]));
    }
  }

  join(room) {
    if (!validName(room, MAX_ROOM)) {
      return this.reply(`error: invalid room (1 to ${MAX_ROOM} characters, no spaces)`);
    }
    if (this.room() === room) return this.reply(`error: you are already in ${room}`);
    const old = this.room();
    if (old !== null) this.leaveRoom(old);
    // Recorded only once the membership exists: a room not joined is no room.
    try {
      sb.joinGroup(this.id, room);
      sb.updateSession(this.id, { [ROOM]: room });
    } catch (e) {
      if (!(e instanceof sb.SwitchboardError)) throw e;
      delete this.session[ROOM];
      return this.reply(`error: could not join ${room}: ${e.message}`);
    }
    this.session[ROOM] = room;
    check(() => sb.sendToGroup(room, `* ${this.name()} joined ${room}`));
    this.replay(room, false);
  }

  /** Sends the room's last messages to this client; `always`: even when there are none. */
  replay(room, always) {
    let lines;
    try {
      lines = history.recent(room);
    } catch (e) {
      if (!(e instanceof sb.SwitchboardError)) throw e;
      return this.reply(`error: history unavailable: ${e.message}`);
    }
    if (lines.length === 0 && !always) return;
    this.reply(`* last ${lines.length} messages in ${room}:`);
    for (const line of lines) this.reply(`[history] ${line}`);
  }

  history() {
    const room = this.room();
    if (room === null) return this.reply("error: you are not in a room");
    this.replay(room, true);
  }

  leave(room) {
    const current = this.room();
    if (room === null && current === null) return this.reply("error: you are not in a room");
    if (room !== null && current !== room) return this.reply(`error: you are not in ${room}`);
    this.leaveRoom(current);
    const session = { ...this.session };
    delete session[ROOM];
    check(() => sb.setSession(this.id, session));
    this.session = session;
  }

  /** Announces the departure to the room (the leaver included) and leaves it. */
  leaveRoom(room) {
    check(() => sb.sendToGroup(room, `* ${this.name()} left ${room}`));
    check(() => sb.leaveGroup(this.id, room));
  }

  who() {
    const room = this.room();
    if (room === null) return this.reply("error: you are not in a room");
    const names = [];
    try {
      for (const id of sb.clientsInGroup(room)) {
        let session = {};
        try {
          session = sb.getSession(id) ?? {};
        } catch (e) {
          if (!(e instanceof sb.SwitchboardError)) throw e;
        }
        names.push(displayName(session, id));
      }
    } catch (e) {
      if (!(e instanceof sb.SwitchboardError)) throw e;
      return this.reply(`error: ${e.message}`);
    }
    names.sort(byteOrder);
    this.reply(`* in ${room} (${names.length}): ${names.join(", ")}`);
  }

  msg(args) {
    const parts = splitOnce(args);
    if (parts === null) return this.reply("error: usage: /msg NICK TEXT");
    const [nick, rest] = parts;
    const text = trimSpace(rest);
    if (nick === "" || text === "") return this.reply("error: usage: /msg NICK TEXT");
    if (!isUidOnline(nick)) return this.reply(`error: no such nick ${nick}`);
    check(() => sb.sendToUid(nick, `[private] ${this.name()}: ${text}`));
    this.reply(`[private to ${nick}] ${text}`);
  }

  say(text) {
    const room = this.room();
    if (room === null) return this.reply("error: you are not in a room; /join ROOM first");
    const line = `${this.name()}: ${text}`;
    try {
      history.record(room, line);
    } catch (e) {
      if (!(e instanceof sb.SwitchboardError)) throw e;
      sb.warn(`chat: history not kept: ${e.message}`);
    }
    check(() => sb.sendToGroup(room, line));
  }

  handle(input) {
    const line = trimSpace(input);
    if (line === "") return;
    if (!line.startsWith("/")) return this.say(line);
    const command = line.slice(1);
    const parts = splitOnce(command);
    const [name, args] = parts === null ? [command, ""] : [parts[0], trimSpace(parts[1])];
    switch (name) {
      case "nick":
        return args === "" ? this.reply("error: usage: /nick NAME") : this.nick(args);
      case "join":
        return args === "" ? this.reply("error: usage: /join ROOM") : this.join(args);
      case "leave":
        return this.leave(args === "" ? null : args);
      case "who":
        return this.who();
      case "msg":
        return this.msg(args);
      case "history":
        return this.history();
      case "help":
        return this.reply(`* ${HELP}`);
      default:
        return this.reply(`error: unknown command /${name}; ${HELP}`);
    }
  }
}

/** Whether a uid is online; an API error counts as "no". */
function isUidOnline(uid) {
  try {
    return sb.isUidOnline(uid);
  } catch (e) {
    if (!(e instanceof sb.SwitchboardError)) throw e;
    return false;
  }
}

export default sb.definePlugin({
  onMessage(ctx, message) {
    if (typeof message !== "string") {
      return check(() => ctx.reply("error: binary messages are not supported"));
    }
    // The context's session is a snapshot taken when the message left the gateway, which may
    // predate the previous command's changes: read the current one.
    let session = null;
    try {
      session = sb.getSession(ctx.client);
    } catch (e) {
      if (!(e instanceof sb.SwitchboardError)) throw e;
    }
    new Client(ctx.client, session ?? { ...ctx.session }).handle(message);
  },

  onClose(ctx, bound) {
    const name = bound.uid ?? displayName(ctx.session, ctx.client);
    for (const room of bound.groups) {
      check(() => sb.sendToGroup(room, `* ${name} left ${room} (disconnected)`));
    }
  },
});
