//! Chat: rooms, nicknames and private messages over Switchboard (the protocol is in README.md).
//!
//! All state lives on the gateways and in the app's key-value store, so any instance (or a
//! hot-swapped version) can serve any client: the nick is the session key `nick` and the
//! client's uid, the current room is the session key `room` and a group membership, and each
//! room's last messages are in the store ([`history`]).

mod history;

use switchboard_sdk::{
    self as sb, Bound, ClientId, Context, LogLevel, Message, Plugin, Session, export,
};

/// The session key holding the nick.
const NICK: &str = "nick";
/// The session key holding the current room.
const ROOM: &str = "room";
/// The longest nick, in characters.
const MAX_NICK: usize = 32;
/// The longest room name, in characters.
const MAX_ROOM: usize = 64;
/// The list of commands, as `/help` prints it.
const HELP: &str =
    "commands: /nick NAME, /join ROOM, /leave [ROOM], /who, /msg NICK TEXT, /history, /help";

/// What separates a command from its argument, and is trimmed around a message: ASCII
/// whitespace (space, tab, CR, LF, form feed, vertical tab), the same in every chat port.
const SPACE: [char; 6] = [' ', '\t', '\r', '\n', '\x0c', '\x0b'];

/// The chat plugin; it keeps no state of its own.
#[derive(Default)]
struct Chat;

/// The name shown for a client: its nick, or its client id if it has none.
fn display_name(session: &Session, client: &ClientId) -> String {
    match session.get(NICK) {
        Some(nick) if !nick.is_empty() => nick.clone(),
        _ => client.to_string(),
    }
}

/// Whether `name` is an acceptable nick or room name: 1..=max characters, none of them
/// whitespace or control characters.
fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.chars().count() <= max
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Logs a failed API call; chat replies are best effort.
fn check(result: sb::Result<()>) {
    if let Err(e) = result {
        sb::log(LogLevel::Warn, &format!("chat: {e}"));
    }
}

/// What one event needs to know about its client.
struct Client<'a> {
    id: &'a ClientId,
    /// The current session (read fresh from the gateway, the context's snapshot if that fails).
    session: Session,
}

impl Client<'_> {
    fn name(&self) -> String {
        display_name(&self.session, self.id)
    }

    fn room(&self) -> Option<&str> {
        self.session
            .get(ROOM)
            .map(String::as_str)
            .filter(|r| !r.is_empty())
    }

    fn reply(&self, line: impl Into<String>) {
        check(self.id.send(Message::Text(line.into())));
    }

    fn nick(&mut self, nick: &str) {
        if !valid_name(nick, MAX_NICK) {
            return self.reply(format!(
                "error: invalid nick (1 to {MAX_NICK} characters, no spaces)"
            ));
        }
        let old = self.name();
        let current = self.session.get(NICK).map(String::as_str);
        if current != Some(nick) && sb::is_uid_online(nick).unwrap_or(false) {
            return self.reply(format!("error: nick {nick} is taken"));
        }
        // Recorded only once the uid is bound: a nick the gateway did not take is no nick.
        if let Err(e) = self
            .id
            .bind_uid(nick)
            .and_then(|()| self.id.update_session([(NICK, nick)]))
        {
            return self.reply(format!("error: could not take nick {nick}: {e}"));
        }
        self.session.insert(NICK.to_owned(), nick.to_owned());
        self.reply(format!("* you are now known as {nick}"));
        if let Some(room) = self.room()
            && old != nick
        {
            check(sb::send_to_group(
                room,
                format!("* {old} is now known as {nick}"),
                std::slice::from_ref(self.id),
            ));
        }
    }

    fn join(&mut self, room: &str) {
        if !valid_name(room, MAX_ROOM) {
            return self.reply(format!(
                "error: invalid room (1 to {MAX_ROOM} characters, no spaces)"
            ));
        }
        if self.room() == Some(room) {
            return self.reply(format!("error: you are already in {room}"));
        }
        if let Some(old) = self.room().map(str::to_owned) {
            self.leave_room(&old);
        }
        // Recorded only once the membership exists: a room not joined is no room.
        if let Err(e) = self
            .id
            .join(room)
            .and_then(|()| self.id.update_session([(ROOM, room)]))
        {
            self.session.remove(ROOM);
            return self.reply(format!("error: could not join {room}: {e}"));
        }
        self.session.insert(ROOM.to_owned(), room.to_owned());
        check(sb::send_to_group(
            room,
            format!("* {} joined {room}", self.name()),
            &[],
        ));
        self.replay(room, false);
    }

    /// Sends the room's last messages to this client; `always`: even when there are none.
    fn replay(&self, room: &str, always: bool) {
        let lines = match history::recent(room) {
            Ok(lines) => lines,
            Err(e) => return self.reply(format!("error: history unavailable: {e}")),
        };
        if lines.is_empty() && !always {
            return;
        }
        self.reply(format!("* last {} messages in {room}:", lines.len()));
        for line in lines {
            self.reply(format!("[history] {line}"));
        }
    }

    fn history(&self) {
        match self.room() {
            Some(room) => self.replay(room, true),
            None => self.reply("error: you are not in a room"),
        }
    }

    fn leave(&mut self, room: Option<&str>) {
        let current = self.room().map(str::to_owned);
        match (room, current) {
            (None, None) => self.reply("error: you are not in a room"),
            (Some(room), current) if current.as_deref() != Some(room) => {
                self.reply(format!("error: you are not in {room}"))
            }
            (_, Some(current)) => {
                self.leave_room(&current);
                let mut session = self.session.clone();
                session.remove(ROOM);
                check(self.id.set_session(&session));
                self.session = session;
            }
            (Some(_), None) => {}
        }
    }

    /// Announces the departure to the room (the leaver included) and leaves it.
    fn leave_room(&self, room: &str) {
        check(sb::send_to_group(
            room,
            format!("* {} left {room}", self.name()),
            &[],
        ));
        check(self.id.leave(room));
    }

    fn who(&self) {
        let Some(room) = self.room() else {
            return self.reply("error: you are not in a room");
        };
        let mut names = Vec::new();
        for member in sb::clients_in_group(room) {
            match member {
                Ok(id) => {
                    let session = id.session().ok().flatten().unwrap_or_default();
                    names.push(display_name(&session, &id));
                }
                Err(e) => return self.reply(format!("error: {e}")),
            }
        }
        names.sort();
        self.reply(format!(
            "* in {room} ({}): {}",
            names.len(),
            names.join(", ")
        ));
    }

    fn msg(&self, args: &str) {
        let Some((nick, text)) = args.split_once(SPACE) else {
            return self.reply("error: usage: /msg NICK TEXT");
        };
        let text = text.trim_matches(SPACE);
        if nick.is_empty() || text.is_empty() {
            return self.reply("error: usage: /msg NICK TEXT");
        }
        if !sb::is_uid_online(nick).unwrap_or(false) {
            return self.reply(format!("error: no such nick {nick}"));
        }
        check(sb::send_to_uid(
            nick,
            format!("[private] {}: {text}", self.name()),
            &[],
        ));
        self.reply(format!("[private to {nick}] {text}"));
    }

    fn say(&self, text: &str) {
        match self.room() {
            Some(room) => {
                let line = format!("{}: {text}", self.name());
                if let Err(e) = history::record(room, &line) {
                    sb::log(LogLevel::Warn, &format!("chat: history not kept: {e}"));
                }
                check(sb::send_to_group(room, line, &[]));
            }
            None => self.reply("error: you are not in a room; /join ROOM first"),
        }
    }

    fn handle(&mut self, line: &str) {
        let line = line.trim_matches(SPACE);
        if line.is_empty() {
            return;
        }
        let Some(command) = line.strip_prefix('/') else {
            return self.say(line);
        };
        let (name, args) = match command.split_once(SPACE) {
            Some((name, args)) => (name, args.trim_matches(SPACE)),
            None => (command, ""),
        };
        match (name, args) {
            ("nick", "") => self.reply("error: usage: /nick NAME"),
            ("nick", nick) => self.nick(nick),
            ("join", "") => self.reply("error: usage: /join ROOM"),
            ("join", room) => self.join(room),
            ("leave", "") => self.leave(None),
            ("leave", room) => self.leave(Some(room)),
            ("who", _) => self.who(),
            ("history", _) => self.history(),
            ("msg", args) => self.msg(args),
            ("help", _) => self.reply(format!("* {HELP}")),
            _ => self.reply(format!("error: unknown command /{name}; {HELP}")),
        }
    }
}

impl Plugin for Chat {
    fn on_message(&mut self, ctx: &Context, message: Message) {
        let Message::Text(line) = message else {
            return check(ctx.reply("error: binary messages are not supported"));
        };
        // The context's session is a snapshot taken when the message left the gateway, which
        // may predate the previous command's changes: read the current one.
        let session = match ctx.client().session() {
            Ok(Some(session)) => session,
            _ => ctx.session().clone(),
        };
        let mut client = Client {
            id: ctx.client(),
            session,
        };
        client.handle(&line);
    }

    fn on_close(&mut self, ctx: &Context, bound: Bound) {
        let name = match bound.uid {
            Some(uid) => uid,
            None => display_name(ctx.session(), ctx.client()),
        };
        for room in &bound.groups {
            check(sb::send_to_group(
                room,
                format!("* {name} left {room} (disconnected)"),
                &[],
            ));
        }
    }
}

export!(Chat);
