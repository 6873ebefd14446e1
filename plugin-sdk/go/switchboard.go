// Package switchboard writes Switchboard plugins in Go.
//
// A plugin is a WebAssembly component of the WIT world switchboard:plugin/plugin: the host
// calls its event handlers (a message arrived, a client left, a timer fired …) and the plugin
// calls the host API (send to a client, a uid, a group or everyone; bind uids; manage groups
// and sessions; list and count clients; set timers; log). This package wraps the generated
// bindings in plain Go: strings, []byte, map sessions, errors as error.
//
//	package main
//
//	import sb "switchboard.dev/sdk"
//
//	type Echo struct{ sb.BaseHandler }
//
//	func (Echo) OnMessage(ctx *sb.Context, msg sb.Message) {
//		_ = ctx.Reply(msg)
//	}
//
//	func init() { sb.Register(&Echo{}) }
//
//	func main() {}
//
// Register the handler in init: a component is a reactor, main never runs. One handler
// value serves every event of its instance, one at a time (no locking needed). Several
// instances run side by side: state they share belongs in sessions, uids and groups.
// A handler that panics traps: only that event is lost and the host replaces the instance.
//
// Everything the SDK hands to a handler is an ordinary Go value the handler may keep.
package switchboard

import (
	"fmt"
	"sort"
	"strings"

	events "switchboard.dev/sdk/internal/bindings/exports/export_switchboard_plugin_events"
	_ "switchboard.dev/sdk/internal/bindings/exports/wit_exports"
	api "switchboard.dev/sdk/internal/bindings/imports/switchboard_plugin_api"
	raw "switchboard.dev/sdk/internal/bindings/imports/switchboard_plugin_types"
	wit "switchboard.dev/sdk/internal/wit/types"
)

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

// ErrorKind names the case of an Error, as in the WIT: "invalid-client-id", "invalid-name",
// "too-large", "invalid-argument" or "timeout".
type ErrorKind string

// The error kinds.
const (
	InvalidClientId ErrorKind = "invalid-client-id"
	InvalidName     ErrorKind = "invalid-name"
	TooLarge        ErrorKind = "too-large"
	InvalidArgument ErrorKind = "invalid-argument"
	Timeout         ErrorKind = "timeout"
)

// Error is an error the host API returned. Compare kinds with errors.As or Is(err, kind).
type Error struct {
	Kind   ErrorKind
	Detail string
}

func (e *Error) Error() string {
	what := strings.ReplaceAll(string(e.Kind), "-", " ")
	if e.Detail == "" {
		return what
	}
	return what + ": " + e.Detail
}

// Is reports whether err is an *Error of this kind.
func Is(err error, kind ErrorKind) bool {
	e, ok := err.(*Error)
	return ok && e.Kind == kind
}

func fromRawError(e raw.Error) error {
	switch e.Tag() {
	case raw.Error_InvalidClientId:
		return &Error{InvalidClientId, strings.Clone(e.InvalidClientId())}
	case raw.Error_InvalidName:
		return &Error{InvalidName, strings.Clone(e.InvalidName())}
	case raw.Error_TooLarge:
		return &Error{TooLarge, strings.Clone(e.TooLarge())}
	case raw.Error_InvalidArgument:
		return &Error{InvalidArgument, strings.Clone(e.InvalidArgument())}
	default:
		return &Error{Timeout, strings.Clone(e.Timeout())}
	}
}

func unit(r wit.Result[wit.Unit, raw.Error]) error {
	if r.IsErr() {
		return fromRawError(r.Err())
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Messages and sessions
// ---------------------------------------------------------------------------------------

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

func option(s string, ok bool) wit.Option[string] {
	if ok {
		return wit.Some(s)
	}
	return wit.None[string]()
}

// IsValidClientId reports whether id is 20 lowercase hex characters.
func IsValidClientId(id string) bool {
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

// ---------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------

// SendToClient queues msg to the client; a well-formed id of a client that is gone: nothing
// is sent and no error is returned.
func SendToClient(client string, msg Message) error {
	return unit(api.SendToClient(client, msg.toRaw()))
}

// SendToUid sends to every client bound to uid, except those in without.
func SendToUid(uid string, msg Message, without ...string) error {
	return unit(api.SendToUid(uid, msg.toRaw(), without))
}

// SendToGroup sends to every member of group on every gateway, except those in without.
func SendToGroup(group string, msg Message, without ...string) error {
	return unit(api.SendToGroup(group, msg.toRaw(), without))
}

// SendToUids sends to every client bound to any of uids (at most 1000), except those in
// without: one call and one bus message per gateway; a client reached twice gets it once.
func SendToUids(uids []string, msg Message, without ...string) error {
	return unit(api.SendToUids(uids, msg.toRaw(), without))
}

// SendToGroups sends to every member of any of groups (at most 1000), once each, except
// those in without.
func SendToGroups(groups []string, msg Message, without ...string) error {
	return unit(api.SendToGroups(groups, msg.toRaw(), without))
}

// SendToClients queues msg to each listed client (at most 1000) once.
func SendToClients(clients []string, msg Message) error {
	return unit(api.SendToClients(clients, msg.toRaw()))
}

// SendToAll sends to every connected client that finished its handshake, except those in without.
func SendToAll(msg Message, without ...string) error {
	return unit(api.SendToAll(msg.toRaw(), without))
}

// IsOnline reports whether the client is connected now.
func IsOnline(client string) (bool, error) {
	r := api.IsOnline(client)
	if r.IsErr() {
		return false, fromRawError(r.Err())
	}
	return r.Ok(), nil
}

// IsUidOnline reports whether at least one client is bound to uid.
func IsUidOnline(uid string) (bool, error) {
	r := api.IsUidOnline(uid)
	if r.IsErr() {
		return false, fromRawError(r.Err())
	}
	return r.Ok(), nil
}

func count(r wit.Result[uint64, raw.Error]) (uint64, error) {
	if r.IsErr() {
		return 0, fromRawError(r.Err())
	}
	return r.Ok(), nil
}

// GetClientCount is the number of connected clients (handshake finished) in the cluster.
func GetClientCount() (uint64, error) { return count(api.GetClientCount()) }

// GetClientCountByGroup is the number of members of group.
func GetClientCountByGroup(group string) (uint64, error) {
	return count(api.GetClientCountByGroup(group))
}

// GetUidCountByGroup is the exact number of distinct uids among the members of group.
func GetUidCountByGroup(group string) (uint64, error) {
	return count(api.GetUidCountByGroup(group))
}

// GetUidCount is the exact number of distinct bound uids in the cluster.
func GetUidCount() (uint64, error) { return count(api.GetUidCount(wit.None[float32]())) }

// GetUidCountEstimate is the sum of each gateway's distinct-uid count multiplied by p.
func GetUidCountEstimate(p float32) (uint64, error) {
	return count(api.GetUidCount(wit.Some(p)))
}

func page(r wit.Result[[]string, raw.Error]) ([]string, error) {
	if r.IsErr() {
		return nil, fromRawError(r.Err())
	}
	return cloneStrings(r.Ok()), nil
}

// GetClientList is one page of connected clients sorted by id, strictly after `after`
// ("" for the start), at most limit (1..=1000). An empty page means the end; Clients pages
// for you.
func GetClientList(after string, limit uint32) ([]string, error) {
	return page(api.GetClientList(option(after, after != ""), limit))
}

// GetClientListByGroup is like GetClientList, members of group only.
func GetClientListByGroup(group, after string, limit uint32) ([]string, error) {
	return page(api.GetClientListByGroup(group, option(after, after != ""), limit))
}

// GetClientListByUid is like GetClientList, clients bound to uid only.
func GetClientListByUid(uid, after string, limit uint32) ([]string, error) {
	return page(api.GetClientListByUid(uid, option(after, after != ""), limit))
}

// DefaultPageSize is the page size of the Clients iterators.
const DefaultPageSize = 256

// ClientIter walks client ids page by page: for it.Next() { id := it.Id() }, then it.Err().
type ClientIter struct {
	fetch func(after string, limit uint32) ([]string, error)
	page  []string
	pos   int
	after string
	done  bool
	err   error
	id    string
}

// Next advances to the next id; false at the end or on an error (see Err).
func (it *ClientIter) Next() bool {
	for it.pos >= len(it.page) {
		if it.done {
			return false
		}
		p, err := it.fetch(it.after, DefaultPageSize)
		if err != nil {
			it.err, it.done = err, true
			return false
		}
		if len(p) == 0 {
			it.done = true
			return false
		}
		it.page, it.pos, it.after = p, 0, p[len(p)-1]
	}
	it.id = it.page[it.pos]
	it.pos++
	return true
}

// Id is the current client id.
func (it *ClientIter) Id() string { return it.id }

// Err is the error that ended the walk, if any.
func (it *ClientIter) Err() error { return it.err }

// All collects the remaining ids.
func (it *ClientIter) All() ([]string, error) {
	var out []string
	for it.Next() {
		out = append(out, it.id)
	}
	return out, it.err
}

// Clients walks every connected client, sorted by id.
func Clients() *ClientIter { return &ClientIter{fetch: GetClientList} }

// ClientsInGroup walks every member of group, sorted by id.
func ClientsInGroup(group string) *ClientIter {
	return &ClientIter{fetch: func(a string, n uint32) ([]string, error) { return GetClientListByGroup(group, a, n) }}
}

// ClientsOfUid walks every client bound to uid, sorted by id.
func ClientsOfUid(uid string) *ClientIter {
	return &ClientIter{fetch: func(a string, n uint32) ([]string, error) { return GetClientListByUid(uid, a, n) }}
}

// GetUidListPaged is one page of bound uids, sorted, each once, strictly after `after` (""
// for the start), at most limit (1..=1000). An empty page means the end; Uids pages for you.
func GetUidListPaged(after string, limit uint32) ([]string, error) {
	return page(api.GetUidListPaged(option(after, after != ""), limit))
}

// GetUidListByGroupPaged is like GetUidListPaged, uids bound to members of group only.
func GetUidListByGroupPaged(group, after string, limit uint32) ([]string, error) {
	return page(api.GetUidListByGroupPaged(group, option(after, after != ""), limit))
}

// GetGroupListPaged is one page of groups that have members, sorted, strictly after `after`.
func GetGroupListPaged(after string, limit uint32) ([]string, error) {
	return page(api.GetGroupListPaged(option(after, after != ""), limit))
}

// Uids walks every bound uid, sorted (Id is the uid).
func Uids() *ClientIter { return &ClientIter{fetch: GetUidListPaged} }

// UidsInGroup walks every uid bound to a member of group, sorted.
func UidsInGroup(group string) *ClientIter {
	return &ClientIter{fetch: func(a string, n uint32) ([]string, error) { return GetUidListByGroupPaged(group, a, n) }}
}

// Groups walks every group that has members, sorted.
func Groups() *ClientIter { return &ClientIter{fetch: GetGroupListPaged} }

// ClientSession is a client with its session, as the sessions pages hold them.
type ClientSession struct {
	Client  string
	Session Session
}

func sessionsPage(r wit.Result[[]wit.Tuple2[string, []wit.Tuple2[string, string]], raw.Error]) ([]ClientSession, error) {
	if r.IsErr() {
		return nil, fromRawError(r.Err())
	}
	rows := r.Ok()
	out := make([]ClientSession, len(rows))
	for i, row := range rows {
		out[i] = ClientSession{Client: strings.Clone(row.F0), Session: sessionFromRaw(row.F1)}
	}
	return out, nil
}

// GetClientSessions is one page of connected clients with their sessions, sorted by id,
// strictly after `after` ("" for the start), at most limit: GatewayWorker's
// getAllClientSessions, paged.
func GetClientSessions(after string, limit uint32) ([]ClientSession, error) {
	return sessionsPage(api.GetClientSessions(option(after, after != ""), limit))
}

// GetClientSessionsByGroup is like GetClientSessions, members of group only.
func GetClientSessionsByGroup(group, after string, limit uint32) ([]ClientSession, error) {
	return sessionsPage(api.GetClientSessionsByGroup(group, option(after, after != ""), limit))
}

// GetClientCountByGroups is the member count of each of groups (at most 1000); 0 for a
// group without members.
func GetClientCountByGroups(groups []string) (map[string]uint64, error) {
	r := api.GetClientCountByGroups(groups)
	if r.IsErr() {
		return nil, fromRawError(r.Err())
	}
	out := make(map[string]uint64)
	for _, row := range r.Ok() {
		out[strings.Clone(row.F0)] = row.F1
	}
	return out, nil
}

// GetClientIdsByUids is the sorted clients bound to each of uids (at most 1000); an empty
// list for an offline uid.
func GetClientIdsByUids(uids []string) (map[string][]string, error) {
	r := api.GetClientIdsByUids(uids)
	if r.IsErr() {
		return nil, fromRawError(r.Err())
	}
	out := make(map[string][]string)
	for _, row := range r.Ok() {
		out[strings.Clone(row.F0)] = cloneStrings(row.F1)
	}
	return out, nil
}

// GetUidList is the bound uids, sorted; unique: each once across the cluster, else per gateway.
func GetUidList(unique bool) ([]string, error) { return page(api.GetUidList(unique)) }

// GetUidListByGroup is the uids bound to members of group, sorted.
func GetUidListByGroup(group string, unique bool) ([]string, error) {
	return page(api.GetUidListByGroup(group, unique))
}

// GetGroupList is the groups that have members, sorted.
func GetGroupList(unique bool) ([]string, error) { return page(api.GetGroupList(unique)) }

// InfoFields chooses what GetClientInfo fills.
type InfoFields uint8

// The fields of GetClientInfo.
const (
	FieldRemoteIp   InfoFields = InfoFields(raw.ClientInfoFields_RemoteIp)
	FieldRemotePort InfoFields = InfoFields(raw.ClientInfoFields_RemotePort)
	FieldUid        InfoFields = InfoFields(raw.ClientInfoFields_Uid)
	FieldSession    InfoFields = InfoFields(raw.ClientInfoFields_Session)
	FieldGroups     InfoFields = InfoFields(raw.ClientInfoFields_Groups)
	FieldSystem     InfoFields = InfoFields(raw.ClientInfoFields_System)
	AllFields       InfoFields = 0x3f
)

// SystemInfo is what the gateway keeps about a connection.
type SystemInfo struct {
	Protocol      string // "websocket", "text" or "frame"
	ConnectedAtMs uint64
	LastActiveMs  uint64
	BytesIn       uint64
	BytesOut      uint64
	GatewayId     uint32
}

// ClientInfo is what GetClientInfo returns: only asked fields are set (nil when not asked).
type ClientInfo struct {
	Client     string
	RemoteIp   *string
	RemotePort *uint16
	Uid        *string
	Session    Session
	Groups     []string
	System     *SystemInfo
}

// GetClientInfo returns the asked fields of what the gateway knows about the client; nil if
// it is unknown.
func GetClientInfo(client string, fields InfoFields) (*ClientInfo, error) {
	r := api.GetClientInfo(client, raw.ClientInfoFields(fields))
	if r.IsErr() {
		return nil, fromRawError(r.Err())
	}
	o := r.Ok()
	if o.IsNone() {
		return nil, nil
	}
	c := o.Some()
	info := &ClientInfo{Client: strings.Clone(c.Client)}
	if c.RemoteIp.IsSome() {
		s := strings.Clone(c.RemoteIp.Some())
		info.RemoteIp = &s
	}
	if c.RemotePort.IsSome() {
		p := c.RemotePort.Some()
		info.RemotePort = &p
	}
	if c.Uid.IsSome() {
		s := strings.Clone(c.Uid.Some())
		info.Uid = &s
	}
	if c.Session.IsSome() {
		info.Session = sessionFromRaw(c.Session.Some())
	}
	if c.Groups.IsSome() {
		info.Groups = cloneStrings(c.Groups.Some())
	}
	if c.System.IsSome() {
		s := c.System.Some()
		protocol := [...]string{"websocket", "text", "frame"}[s.Protocol%3]
		info.System = &SystemInfo{protocol, s.ConnectedAtMs, s.LastActiveMs, s.BytesIn, s.BytesOut, s.GatewayId}
	}
	return info, nil
}

// CloseClient closes the client: force false flushes what was queued first, then a clean
// close; force true drops it at once. OnClose follows once.
func CloseClient(client string, force bool) error { return unit(api.CloseClient(client, force)) }

// CloseClientWith sends msg, then closes the client cleanly with msg flushed first.
func CloseClientWith(client string, msg Message) error {
	return unit(api.CloseClientWith(client, msg.toRaw()))
}

// BindUid binds the client to uid; a client bound to another uid is moved.
func BindUid(client, uid string) error { return unit(api.BindUid(client, uid)) }

// UnbindUid clears the client's uid; nothing happens if it has none.
func UnbindUid(client string) error { return unit(api.UnbindUid(client)) }

// JoinGroup makes the client a member of group.
func JoinGroup(client, group string) error { return unit(api.JoinGroup(client, group)) }

// LeaveGroup removes the client from group.
func LeaveGroup(client, group string) error { return unit(api.LeaveGroup(client, group)) }

// Ungroup removes every membership of group on every gateway; clients stay connected.
func Ungroup(group string) error { return unit(api.Ungroup(group)) }

// SetSession replaces the client's session.
func SetSession(client string, s Session) error {
	return unit(api.SetSession(client, sessionToRaw(s)))
}

// UpdateSession merges into the client's session: given keys overwrite, the others stay.
func UpdateSession(client string, s Session) error {
	return unit(api.UpdateSession(client, sessionToRaw(s)))
}

// DeleteSession empties the client's session.
func DeleteSession(client string) error { return unit(api.DeleteSession(client)) }

// GetSession returns the client's session: nil (and no error) if the client is unknown,
// an empty map if it has none.
func GetSession(client string) (Session, error) {
	r := api.GetSession(client)
	if r.IsErr() {
		return nil, fromRawError(r.Err())
	}
	o := r.Ok()
	if o.IsNone() {
		return nil, nil
	}
	return sessionFromRaw(o.Some()), nil
}

// SetTimer fires OnTimer on this instance after afterMs (1..=86 400 000) milliseconds, and
// every afterMs from then on if repeat.
func SetTimer(afterMs uint64, repeat bool) (uint64, error) {
	return count(api.SetTimer(afterMs, repeat))
}

// ClearTimer cancels a timer of this instance; unknown ids are ignored.
func ClearTimer(id uint64) { api.ClearTimer(id) }

// LogLevel is the level of a Log line.
type LogLevel uint8

// The log levels.
const (
	LevelTrace LogLevel = LogLevel(raw.LogLevel_Trace)
	LevelDebug LogLevel = LogLevel(raw.LogLevel_Debug)
	LevelInfo  LogLevel = LogLevel(raw.LogLevel_Info)
	LevelWarn  LogLevel = LogLevel(raw.LogLevel_Warn)
	LevelError LogLevel = LogLevel(raw.LogLevel_Error)
)

// Log writes a line to the host's log, tagged with the plugin's name and version.
func Log(level LogLevel, message string) { api.Log(raw.LogLevel(level), message) }

// Tracef logs a formatted line at trace level.
func Tracef(format string, a ...any) { Log(LevelTrace, fmt.Sprintf(format, a...)) }

// Debugf logs a formatted line at debug level.
func Debugf(format string, a ...any) { Log(LevelDebug, fmt.Sprintf(format, a...)) }

// Infof logs a formatted line at info level.
func Infof(format string, a ...any) { Log(LevelInfo, fmt.Sprintf(format, a...)) }

// Warnf logs a formatted line at warn level.
func Warnf(format string, a ...any) { Log(LevelWarn, fmt.Sprintf(format, a...)) }

// Errorf logs a formatted line at error level.
func Errorf(format string, a ...any) { Log(LevelError, fmt.Sprintf(format, a...)) }

// ---------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------

// Context is what the host tells a handler about the client an event concerns.
type Context struct {
	Client     string  // the client id
	RemoteAddr string  // ip:port
	GatewayId  uint32  // the gateway that holds the client
	Uid        string  // the bound uid, "" if none (HasUid tells)
	HasUid     bool    // whether a uid is bound
	Session    Session // a snapshot taken when the event left the gateway
}

// Reply queues msg to this event's client.
func (c *Context) Reply(msg Message) error { return SendToClient(c.Client, msg) }

func contextFromRaw(c raw.Context) *Context {
	ctx := &Context{
		Client:     strings.Clone(c.Client),
		RemoteAddr: strings.Clone(c.RemoteAddr),
		GatewayId:  c.GatewayId,
		Session:    sessionFromRaw(c.Session),
	}
	if c.Uid.IsSome() {
		ctx.Uid, ctx.HasUid = strings.Clone(c.Uid.Some()), true
	}
	return ctx
}

// HttpRequest is the WebSocket upgrade request, as OnWebsocketConnect sees it.
type HttpRequest struct {
	Path    string      // such as /chat
	Query   string      // without ?, empty if none
	Headers [][2]string // names in lowercase, in the order received
}

// Header is the first value of header name (case-insensitive), and whether it was there.
func (r *HttpRequest) Header(name string) (string, bool) {
	name = strings.ToLower(name)
	for _, h := range r.Headers {
		if h[0] == name {
			return h[1], true
		}
	}
	return "", false
}

// QueryParam is the raw value of name in the query string ("" for a bare key), and whether
// it was there.
func (r *HttpRequest) QueryParam(name string) (string, bool) {
	for _, part := range strings.Split(r.Query, "&") {
		k, v, _ := strings.Cut(part, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}

// Rejection refuses a WebSocket handshake with an HTTP status (400..=599, others become
// 403) and a reason sent as the body.
type Rejection struct {
	Status uint16
	Reason string
}

// Bound is what was bound to a client when it left.
type Bound struct {
	Uid    string // "" if none (HasUid tells)
	HasUid bool
	Groups []string // sorted
}

// Handler is a plugin: implement it (embed BaseHandler for the handlers you do not need)
// and Register it in init.
type Handler interface {
	// OnWorkerStart: an instance was created (start, scale-up, hot swap, after a failure).
	OnWorkerStart(workerId uint32)
	// OnConnect: a TCP client was accepted, or a WebSocket handshake completed.
	OnConnect(ctx *Context)
	// OnWebsocketConnect: a WebSocket handshake arrived; a non-nil Rejection refuses it.
	OnWebsocketConnect(ctx *Context, request *HttpRequest) *Rejection
	// OnMessage: one complete message arrived, byte-exact.
	OnMessage(ctx *Context, msg Message)
	// OnClose: the client is gone; bound is what it was bound to.
	OnClose(ctx *Context, bound Bound)
	// OnTimer: a timer set by this instance fired.
	OnTimer(id uint64)
	// OnWorkerStop: the instance is being retired (stop, hot swap); it has bounded time.
	OnWorkerStop(workerId uint32)
}

// BaseHandler implements every Handler method as doing nothing; embed it.
type BaseHandler struct{}

func (BaseHandler) OnWorkerStart(uint32)                                 {}
func (BaseHandler) OnConnect(*Context)                                   {}
func (BaseHandler) OnWebsocketConnect(*Context, *HttpRequest) *Rejection { return nil }
func (BaseHandler) OnMessage(*Context, Message)                          {}
func (BaseHandler) OnClose(*Context, Bound)                              {}
func (BaseHandler) OnTimer(uint64)                                       {}
func (BaseHandler) OnWorkerStop(uint32)                                  {}

// Register makes h the plugin's handler; call it once, from init.
func Register(h Handler) {
	events.Dispatch = dispatcher{h}
}

// dispatcher turns raw events (whose strings point into the argument arena) into SDK values
// (copies) for the handler.
type dispatcher struct{ h Handler }

func (d dispatcher) OnWorkerStart(id uint32) { d.h.OnWorkerStart(id) }

func (d dispatcher) OnConnect(ctx raw.Context) { d.h.OnConnect(contextFromRaw(ctx)) }

func (d dispatcher) OnWebsocketConnect(ctx raw.Context, r raw.HttpRequest) *raw.Rejection {
	req := &HttpRequest{Path: strings.Clone(r.Path), Query: strings.Clone(r.Query)}
	for _, h := range r.Headers {
		req.Headers = append(req.Headers, [2]string{strings.Clone(h.F0), strings.Clone(h.F1)})
	}
	if rej := d.h.OnWebsocketConnect(contextFromRaw(ctx), req); rej != nil {
		return &raw.Rejection{Status: rej.Status, Reason: rej.Reason}
	}
	return nil
}

func (d dispatcher) OnMessage(ctx raw.Context, m raw.Message) {
	d.h.OnMessage(contextFromRaw(ctx), fromRawMessage(m))
}

func (d dispatcher) OnClose(ctx raw.Context, b raw.Bound) {
	bound := Bound{Groups: cloneStrings(b.Groups)}
	if b.Uid.IsSome() {
		bound.Uid, bound.HasUid = strings.Clone(b.Uid.Some()), true
	}
	d.h.OnClose(contextFromRaw(ctx), bound)
}

func (d dispatcher) OnTimer(id uint64) { d.h.OnTimer(id) }

func (d dispatcher) OnWorkerStop(id uint32) { d.h.OnWorkerStop(id) }
