// Package switchboard writes Switchboard plugins in Go.
//
// A plugin is a WebAssembly component of the WIT world switchboard:plugin/plugin: the host
// calls its event handlers (a message arrived, a client left, a timer fired …) and the plugin
// calls the host API (send to a client, a uid, a group or everyone; bind uids; manage groups
// and sessions; list and count clients; set timers; log). This package wraps the generated
// bindings in plain Go: strings, []byte, map sessions, errors as error, pages as iter.Seq2.
//
//	package main
//
//	import sb "switchboard.dev/sdk"
//
//	type Echo struct{ sb.BaseHandler }
//
//	func (Echo) OnMessage(ctx *sb.Context, msg sb.Message) error {
//		return ctx.Reply(msg)
//	}
//
//	func init() { sb.Register(Echo{}) }
//
//	func main() {}
//
// Register the handler in init: a component is a reactor, main never runs. A plugin that
// registered none is refused at start. One handler value serves every event of its
// instance, one at a time (no locking needed). Several instances run side by side: state
// they share belongs in sessions, uids and groups.
//
// Errors: a handler returns error. A non-nil error is logged at warn as
// "unhandled error in on-message: KIND: DETAIL" and the event ends normally: the instance
// and its memory stay. For OnWebsocketConnect it also refuses the handshake with 500 (a
// *Rejection refuses it with its own status). A panic traps: only that event is lost and the
// host replaces the instance.
//
// Optional values are (value, ok) everywhere: ctx.UID(), bound.UID(), info.RemoteIP(),
// GetSession, Variables.Get, KV.Get.
//
// Everything the SDK hands to a handler is an ordinary Go value the handler may keep.
package switchboard

import (
	"sort"
	"strings"

	raw "switchboard.dev/sdk/internal/bindings/imports/switchboard_plugin_types"
	witRuntime "switchboard.dev/sdk/internal/wit/runtime"
	wit "switchboard.dev/sdk/internal/wit/types"
)

// Message is one complete message: text (a WebSocket text frame, a text-protocol line) or
// binary (a WebSocket binary frame, a length-prefixed frame). The zero value is empty text.
type Message struct {
	binary bool
	text   string
	data   []byte
}

// Text makes a text message.
func Text(s string) Message { return Message{text: s} }

// Binary makes a binary message.
func Binary(b []byte) Message { return Message{binary: true, data: b} }

// IsText reports whether the message is text.
func (m Message) IsText() bool { return !m.binary }

// IsBinary reports whether the message is binary.
func (m Message) IsBinary() bool { return m.binary }

// String is the text of a text message, or the bytes of a binary one as a string.
func (m Message) String() string {
	if m.binary {
		return string(m.data)
	}
	return m.text
}

// Bytes is the bytes of a binary message, or the UTF-8 of a text one.
func (m Message) Bytes() []byte {
	if m.binary {
		return m.data
	}
	return []byte(m.text)
}

// Len is the message's size in bytes.
func (m Message) Len() int {
	if m.binary {
		return len(m.data)
	}
	return len(m.text)
}

func (m Message) toRaw() raw.Message {
	if m.binary {
		return raw.MakeMessageBinary(m.data)
	}
	return raw.MakeMessageText(m.text)
}

func fromRawMessage(m raw.Message) Message {
	if m.Tag() == raw.Message_Binary {
		return Binary(append([]byte(nil), m.Binary()...))
	}
	return Text(strings.Clone(m.Text()))
}

// Session is a client's session: string keys to string values.
type Session map[string]string

func sessionToRaw(s Session) []wit.Tuple2[string, string] {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]wit.Tuple2[string, string], len(keys))
	for i, k := range keys {
		out[i] = wit.Tuple2[string, string]{F0: k, F1: s[k]}
	}
	return out
}

func sessionFromRaw(r []wit.Tuple2[string, string]) Session {
	s := make(Session, len(r))
	for _, kv := range r {
		s[strings.Clone(kv.F0)] = strings.Clone(kv.F1)
	}
	return s
}

func cloneStrings(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.Clone(s)
	}
	return out
}

// cursor is the WIT option of a page's start: "" is the first page (no id, uid or group is
// empty).
func cursor(after string) wit.Option[string] {
	if after == "" {
		return wit.None[string]()
	}
	return wit.Some(after)
}

// hold marks the argument arena before an import; `defer release(hold())` in a wrapper gives
// the space of the import's results back once the wrapper has copied them out (its return
// values are evaluated before deferred calls run).
func hold() witRuntime.Mark { return witRuntime.Hold() }

func release(m witRuntime.Mark) { witRuntime.Release(m) }

// IsValidClientID reports whether id is 20 lowercase hex characters.
func IsValidClientID(id string) bool {
	if len(id) != 20 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
