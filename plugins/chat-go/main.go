// Chat: rooms, nicknames and private messages; the protocol is in plugins/chat/README.md and
// this plugin behaves exactly like the Rust one there.
//
// All state lives on the gateways, so any instance (or a hot-swapped version) can serve any
// client: the nick is the session key "nick" and the client's uid, the current room is the
// session key "room" and a group membership. Each room's last messages are in the app's
// key-value store (see recordHistory and recentHistory).
package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	sb "switchboard.dev/sdk"
)

const (
	nickKey = "nick"
	roomKey = "room"
	maxNick = 32
	maxRoom = 64
	help    = "commands: /nick NAME, /join ROOM, /leave [ROOM], /who, /msg NICK TEXT, /history, /help"
	// kept is the number of messages kept per room.
	kept = 50
)

// Each room's last kept messages, so they outlive the instances, a restart and a hot swap.
// Instances run side by side, so there is no read-modify-write of a list: a message takes the
// room's next number from an atomic increment and goes to slot number % kept with its number
// in front; reading keeps the slots of the last kept numbers whose number matches.

func historySeqKey(room string) string { return "history:" + room + ":seq" }

func historySlotKey(room string, seq int64) string {
	return fmt.Sprintf("history:%s:%02d", room, seq%kept)
}

// recordHistory records line as the room's newest message.
func recordHistory(room, line string) error {
	seq, err := sb.KV.Increment(historySeqKey(room), 1)
	if err != nil {
		return err
	}
	return sb.KV.SetString(historySlotKey(room, seq), strconv.FormatInt(seq, 10)+"\n"+line)
}

// recentHistory returns the room's last messages, oldest first.
func recentHistory(room string) ([]string, error) {
	stored, _, err := sb.KV.GetString(historySeqKey(room))
	if err != nil {
		return nil, err
	}
	last, _ := strconv.ParseInt(strings.Trim(stored, asciiSpace), 10, 64)
	lines := []string{}
	for seq := max(1, last-kept+1); seq <= last; seq++ {
		slot, _, err := sb.KV.GetString(historySlotKey(room, seq))
		if err != nil {
			return nil, err
		}
		if number, line, ok := strings.Cut(slot, "\n"); ok && number == strconv.FormatInt(seq, 10) {
			lines = append(lines, line)
		}
	}
	return lines, nil
}

// displayName is the name shown for a client: its nick, or its client id if it has none.
func displayName(session sb.Session, client string) string {
	if nick := session[nickKey]; nick != "" {
		return nick
	}
	return client
}

// validName: 1..=max characters, none of them whitespace or control characters.
func validName(name string, max int) bool {
	n := utf8.RuneCountInString(name)
	if n == 0 || n > max {
		return false
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// asciiSpace is what separates a command from its argument and what is trimmed from a line,
// the same in the four chats: ASCII whitespace (space, tab, LF, VT, FF, CR) only, so a
// no-break space or an em space is part of a word.
const asciiSpace = " \t\n\v\f\r"

// splitOnce splits at the first ASCII whitespace character.
func splitOnce(s string) (string, string, bool) {
	i := strings.IndexAny(s, asciiSpace)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

func uidOnline(uid string) (bool, error) { return sb.IsUIDOnline(uid) }

type client struct {
	id      string
	session sb.Session
}

func (c *client) name() string { return displayName(c.session, c.id) }

func (c *client) room() string { return c.session[roomKey] }

func (c *client) reply(line string) error { return sb.SendToClient(c.id, sb.Text(line)) }

// nick binds the uid first and records the nick in the session only once that worked: a
// failed bind is reported and changes nothing. Two clients asking for one free nick at the
// same moment may both get it (see README.md).
func (c *client) nick(nick string) error {
	if !validName(nick, maxNick) {
		return c.reply(fmt.Sprintf("error: invalid nick (1 to %d characters, no spaces)", maxNick))
	}
	old := c.name()
	if current, ok := c.session[nickKey]; !ok || current != nick {
		taken, err := uidOnline(nick)
		if err != nil {
			return c.reply("error: could not check nick " + nick + ": " + err.Error())
		}
		if taken {
			return c.reply("error: nick " + nick + " is taken")
		}
	}
	if err := sb.BindUID(c.id, nick); err != nil {
		return c.reply("error: could not take nick " + nick + ": " + err.Error())
	}
	if err := sb.UpdateSession(c.id, sb.Session{nickKey: nick}); err != nil {
		return c.reply("error: could not take nick " + nick + ": " + err.Error())
	}
	c.session[nickKey] = nick
	if err := c.reply("* you are now known as " + nick); err != nil {
		return err
	}
	if room := c.room(); room != "" && old != nick {
		return sb.SendToGroup(room, sb.Text("* "+old+" is now known as "+nick), c.id)
	}
	return nil
}

// join joins the new room before leaving the old one, and records it only once joined: a
// failed join is reported and leaves the client where it was.
func (c *client) join(room string) error {
	if !validName(room, maxRoom) {
		return c.reply(fmt.Sprintf("error: invalid room (1 to %d characters, no spaces)", maxRoom))
	}
	if c.room() == room {
		return c.reply("error: you are already in " + room)
	}
	if err := sb.JoinGroup(c.id, room); err != nil {
		return c.reply("error: could not join " + room + ": " + err.Error())
	}
	if err := sb.UpdateSession(c.id, sb.Session{roomKey: room}); err != nil {
		_ = sb.LeaveGroup(c.id, room)
		return c.reply("error: could not join " + room + ": " + err.Error())
	}
	if old := c.room(); old != "" {
		if err := c.leaveRoom(old); err != nil {
			return err
		}
	}
	c.session[roomKey] = room
	if err := sb.SendToGroup(room, sb.Text("* "+c.name()+" joined "+room)); err != nil {
		return err
	}
	return c.replay(room, false)
}

// replay sends the room's last messages to this client; always: even when there are none.
func (c *client) replay(room string, always bool) error {
	lines, err := recentHistory(room)
	if err != nil {
		return c.reply("error: history unavailable: " + err.Error())
	}
	if len(lines) == 0 && !always {
		return nil
	}
	if err := c.reply(fmt.Sprintf("* last %d messages in %s:", len(lines), room)); err != nil {
		return err
	}
	for _, line := range lines {
		if err := c.reply("[history] " + line); err != nil {
			return err
		}
	}
	return nil
}

func (c *client) history() error {
	room := c.room()
	if room == "" {
		return c.reply("error: you are not in a room")
	}
	return c.replay(room, true)
}

func (c *client) leave(room string) error {
	current := c.room()
	if room == "" && current == "" {
		return c.reply("error: you are not in a room")
	}
	if room != "" && current != room {
		return c.reply("error: you are not in " + room)
	}
	if err := c.leaveRoom(current); err != nil {
		return err
	}
	session := sb.Session{}
	for k, v := range c.session {
		if k != roomKey {
			session[k] = v
		}
	}
	c.session = session
	return sb.SetSession(c.id, session)
}

// leaveRoom announces the departure to the room (the leaver included) and leaves it.
func (c *client) leaveRoom(room string) error {
	if err := sb.SendToGroup(room, sb.Text("* "+c.name()+" left "+room)); err != nil {
		return err
	}
	return sb.LeaveGroup(c.id, room)
}

func (c *client) who() error {
	room := c.room()
	if room == "" {
		return c.reply("error: you are not in a room")
	}
	var names []string
	for member, err := range sb.SessionsInGroup(room) {
		if err != nil {
			return c.reply("error: " + err.Error())
		}
		names = append(names, displayName(member.Session, member.Client))
	}
	sort.Strings(names)
	return c.reply(fmt.Sprintf("* in %s (%d): %s", room, len(names), strings.Join(names, ", ")))
}

func (c *client) msg(args string) error {
	nick, rest, _ := splitOnce(args)
	text := strings.Trim(rest, asciiSpace)
	if nick == "" || text == "" {
		return c.reply("error: usage: /msg NICK TEXT")
	}
	online, err := uidOnline(nick)
	if err != nil {
		return err
	}
	if !online {
		return c.reply("error: no such nick " + nick)
	}
	if err := sb.SendToUID(nick, sb.Text("[private] "+c.name()+": "+text)); err != nil {
		return err
	}
	return c.reply("[private to " + nick + "] " + text)
}

func (c *client) say(text string) error {
	room := c.room()
	if room == "" {
		return c.reply("error: you are not in a room; /join ROOM first")
	}
	line := c.name() + ": " + text
	if err := recordHistory(room, line); err != nil {
		sb.Logf(sb.LevelWarn, "chat: history not kept: %v", err)
	}
	return sb.SendToGroup(room, sb.Text(line))
}

func (c *client) handle(line string) error {
	line = strings.Trim(line, asciiSpace)
	if line == "" {
		return nil
	}
	command, isCommand := strings.CutPrefix(line, "/")
	if !isCommand {
		return c.say(line)
	}
	name, args, _ := splitOnce(command)
	args = strings.Trim(args, asciiSpace)
	switch {
	case name == "nick" && args == "":
		return c.reply("error: usage: /nick NAME")
	case name == "nick":
		return c.nick(args)
	case name == "join" && args == "":
		return c.reply("error: usage: /join ROOM")
	case name == "join":
		return c.join(args)
	case name == "leave":
		return c.leave(args)
	case name == "who":
		return c.who()
	case name == "msg":
		return c.msg(args)
	case name == "history":
		return c.history()
	case name == "help":
		return c.reply("* " + help)
	}
	return c.reply("error: unknown command /" + name + "; " + help)
}

// Chat keeps no state of its own. A host API error a handler returns is logged at warn by
// the SDK; the event ends there.
type Chat struct{ sb.BaseHandler }

// OnMessage handles one line.
func (Chat) OnMessage(ctx *sb.Context, msg sb.Message) error {
	if msg.IsBinary() {
		return ctx.Reply(sb.Text("error: binary messages are not supported"))
	}
	// The context's session is a snapshot taken when the message left the gateway, which may
	// predate the previous command's changes: read the current one.
	session, ok, err := sb.GetSession(ctx.Client)
	if err != nil || !ok {
		session = ctx.Session
	}
	c := client{id: ctx.Client, session: session}
	return c.handle(msg.String())
}

// OnClose tells the rooms the client was in.
func (Chat) OnClose(ctx *sb.Context, bound sb.Bound) error {
	name := displayName(ctx.Session, ctx.Client)
	if uid, ok := bound.UID(); ok {
		name = uid
	}
	for _, room := range bound.Groups {
		if err := sb.SendToGroup(room, sb.Text("* "+name+" left "+room+" (disconnected)")); err != nil {
			return err
		}
	}
	return nil
}

func init() { sb.Register(Chat{}) }

func main() {}
