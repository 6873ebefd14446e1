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
	last, _ := strconv.ParseInt(strings.TrimSpace(stored), 10, 64)
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

// splitOnce splits at the first whitespace character.
func splitOnce(s string) (string, string, bool) {
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, "", false
	}
	_, size := utf8.DecodeRuneInString(s[i:])
	return s[:i], s[i+size:], true
}

// check logs a failed API call: chat replies are best effort.
func check(err error) {
	if err != nil {
		sb.Warnf("chat: %v", err)
	}
}

func uidOnline(uid string) bool {
	online, err := sb.IsUidOnline(uid)
	return err == nil && online
}

type client struct {
	id      string
	session sb.Session
}

func (c *client) name() string { return displayName(c.session, c.id) }

func (c *client) room() string { return c.session[roomKey] }

func (c *client) reply(line string) { check(sb.SendToClient(c.id, sb.Text(line))) }

func (c *client) nick(nick string) {
	if !validName(nick, maxNick) {
		c.reply(fmt.Sprintf("error: invalid nick (1 to %d characters, no spaces)", maxNick))
		return
	}
	old := c.name()
	if current, ok := c.session[nickKey]; (!ok || current != nick) && uidOnline(nick) {
		c.reply("error: nick " + nick + " is taken")
		return
	}
	check(sb.BindUid(c.id, nick))
	check(sb.UpdateSession(c.id, sb.Session{nickKey: nick}))
	c.session[nickKey] = nick
	c.reply("* you are now known as " + nick)
	if room := c.room(); room != "" && old != nick {
		check(sb.SendToGroup(room, sb.Text("* "+old+" is now known as "+nick), c.id))
	}
}

func (c *client) join(room string) {
	if !validName(room, maxRoom) {
		c.reply(fmt.Sprintf("error: invalid room (1 to %d characters, no spaces)", maxRoom))
		return
	}
	if c.room() == room {
		c.reply("error: you are already in " + room)
		return
	}
	if old := c.room(); old != "" {
		c.leaveRoom(old)
	}
	check(sb.JoinGroup(c.id, room))
	check(sb.UpdateSession(c.id, sb.Session{roomKey: room}))
	c.session[roomKey] = room
	check(sb.SendToGroup(room, sb.Text("* "+c.name()+" joined "+room)))
	c.replay(room, false)
}

// replay sends the room's last messages to this client; always: even when there are none.
func (c *client) replay(room string, always bool) {
	lines, err := recentHistory(room)
	if err != nil {
		c.reply("error: history unavailable: " + err.Error())
		return
	}
	if len(lines) == 0 && !always {
		return
	}
	c.reply(fmt.Sprintf("* last %d messages in %s:", len(lines), room))
	for _, line := range lines {
		c.reply("[history] " + line)
	}
}

func (c *client) history() {
	room := c.room()
	if room == "" {
		c.reply("error: you are not in a room")
		return
	}
	c.replay(room, true)
}

func (c *client) leave(room string) {
	current := c.room()
	if room == "" && current == "" {
		c.reply("error: you are not in a room")
		return
	}
	if room != "" && current != room {
		c.reply("error: you are not in " + room)
		return
	}
	c.leaveRoom(current)
	session := sb.Session{}
	for k, v := range c.session {
		if k != roomKey {
			session[k] = v
		}
	}
	check(sb.SetSession(c.id, session))
	c.session = session
}

// leaveRoom announces the departure to the room (the leaver included) and leaves it.
func (c *client) leaveRoom(room string) {
	check(sb.SendToGroup(room, sb.Text("* "+c.name()+" left "+room)))
	check(sb.LeaveGroup(c.id, room))
}

func (c *client) who() {
	room := c.room()
	if room == "" {
		c.reply("error: you are not in a room")
		return
	}
	var names []string
	members := sb.ClientsInGroup(room)
	for members.Next() {
		id := members.Id()
		session, err := sb.GetSession(id)
		if err != nil || session == nil {
			session = sb.Session{}
		}
		names = append(names, displayName(session, id))
	}
	if err := members.Err(); err != nil {
		c.reply("error: " + err.Error())
		return
	}
	sort.Strings(names)
	c.reply(fmt.Sprintf("* in %s (%d): %s", room, len(names), strings.Join(names, ", ")))
}

func (c *client) msg(args string) {
	nick, rest, ok := splitOnce(args)
	if !ok {
		c.reply("error: usage: /msg NICK TEXT")
		return
	}
	text := strings.TrimSpace(rest)
	if nick == "" || text == "" {
		c.reply("error: usage: /msg NICK TEXT")
		return
	}
	if !uidOnline(nick) {
		c.reply("error: no such nick " + nick)
		return
	}
	check(sb.SendToUid(nick, sb.Text("[private] "+c.name()+": "+text)))
	c.reply("[private to " + nick + "] " + text)
}

func (c *client) say(text string) {
	room := c.room()
	if room == "" {
		c.reply("error: you are not in a room; /join ROOM first")
		return
	}
	line := c.name() + ": " + text
	if err := recordHistory(room, line); err != nil {
		sb.Warnf("chat: history not kept: %v", err)
	}
	check(sb.SendToGroup(room, sb.Text(line)))
}

func (c *client) handle(line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	command, isCommand := strings.CutPrefix(line, "/")
	if !isCommand {
		c.say(line)
		return
	}
	name, args, _ := splitOnce(command)
	args = strings.TrimSpace(args)
	switch {
	case name == "nick" && args == "":
		c.reply("error: usage: /nick NAME")
	case name == "nick":
		c.nick(args)
	case name == "join" && args == "":
		c.reply("error: usage: /join ROOM")
	case name == "join":
		c.join(args)
	case name == "leave":
		c.leave(args)
	case name == "who":
		c.who()
	case name == "msg":
		c.msg(args)
	case name == "history":
		c.history()
	case name == "help":
		c.reply("* " + help)
	default:
		c.reply("error: unknown command /" + name + "; " + help)
	}
}

// Chat keeps no state of its own.
type Chat struct{ sb.BaseHandler }

// OnMessage handles one line.
func (Chat) OnMessage(ctx *sb.Context, msg sb.Message) {
	if msg.IsBinary() {
		check(ctx.Reply(sb.Text("error: binary messages are not supported")))
		return
	}
	// The context's session is a snapshot taken when the message left the gateway, which may
	// predate the previous command's changes: read the current one.
	session, err := sb.GetSession(ctx.Client)
	if err != nil || session == nil {
		session = ctx.Session
	}
	c := client{id: ctx.Client, session: session}
	c.handle(msg.String())
}

// OnClose tells the rooms the client was in.
func (Chat) OnClose(ctx *sb.Context, bound sb.Bound) {
	name := displayName(ctx.Session, ctx.Client)
	if bound.HasUid {
		name = bound.Uid
	}
	for _, room := range bound.Groups {
		check(sb.SendToGroup(room, sb.Text("* "+name+" left "+room+" (disconnected)")))
	}
}

func init() { sb.Register(Chat{}) }

func main() {}
