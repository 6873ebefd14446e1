package switchboard

// The handlers: what a plugin implements, how events reach it, and the error policy.

import (
	"errors"
	"strconv"
	"strings"

	events "switchboard.dev/sdk/internal/bindings/exports/export_switchboard_plugin_events"
	_ "switchboard.dev/sdk/internal/bindings/exports/wit_exports"
	api "switchboard.dev/sdk/internal/bindings/imports/switchboard_plugin_api"
	raw "switchboard.dev/sdk/internal/bindings/imports/switchboard_plugin_types"
	witRuntime "switchboard.dev/sdk/internal/wit/runtime"
)

// Context is what the host tells a handler about the client an event concerns.
type Context struct {
	Client     string  // the client id
	RemoteAddr string  // ip:port
	GatewayID  uint32  // the gateway that holds the client
	Session    Session // a snapshot taken when the event left the gateway
	uid        string
	hasUID     bool
}

// UID is the uid the client is bound to, and whether it is bound.
func (c *Context) UID() (string, bool) { return c.uid, c.hasUID }

// Reply queues msg to this event's client.
func (c *Context) Reply(msg Message) error { return SendToClient(c.Client, msg) }

func contextFromRaw(c raw.Context) *Context {
	ctx := &Context{
		Client:     strings.Clone(c.Client),
		RemoteAddr: strings.Clone(c.RemoteAddr),
		GatewayID:  c.GatewayId,
		Session:    sessionFromRaw(c.Session),
	}
	if c.Uid.IsSome() {
		ctx.uid, ctx.hasUID = strings.Clone(c.Uid.Some()), true
	}
	return ctx
}

// HTTPRequest is the WebSocket upgrade request, as OnWebsocketConnect sees it.
type HTTPRequest struct {
	Path    string      // such as /chat
	Query   string      // without ?, empty if none
	Headers [][2]string // names in lowercase, in the order received
}

// Header is the first value of header name (case-insensitive), and whether it was there.
func (r *HTTPRequest) Header(name string) (string, bool) {
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
func (r *HTTPRequest) QueryParam(name string) (string, bool) {
	for _, part := range strings.Split(r.Query, "&") {
		k, v, _ := strings.Cut(part, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}

// Rejection refuses a WebSocket handshake with an HTTP status (400..=599, others become
// 403) and a reason sent as the body: OnWebsocketConnect returns it as its error.
type Rejection struct {
	Status uint16
	Reason string
}

// Error is "rejected with STATUS: REASON".
func (r *Rejection) Error() string {
	return "rejected with " + strconv.Itoa(int(r.Status)) + ": " + r.Reason
}

// Reject makes a *Rejection, for `return sb.Reject(401, "who are you?")`.
func Reject(status uint16, reason string) error { return &Rejection{Status: status, Reason: reason} }

// Bound is what was bound to a client when it left.
type Bound struct {
	Groups []string // sorted
	uid    string
	hasUID bool
}

// UID is the uid the client was bound to, and whether it was bound.
func (b Bound) UID() (string, bool) { return b.uid, b.hasUID }

// Handler is a plugin: implement it (embed BaseHandler for the handlers you do not need)
// and Register it in init. A handler's non-nil error is logged at warn ("unhandled error in
// on-message: KIND: DETAIL") and the event ends normally; a panic traps.
type Handler interface {
	// OnWorkerStart: an instance was created (start, scale-up, hot swap, after a failure).
	OnWorkerStart(workerID uint32) error
	// OnConnect: a TCP client was accepted, or a WebSocket handshake completed.
	OnConnect(ctx *Context) error
	// OnWebsocketConnect: a WebSocket handshake arrived. nil accepts it; a *Rejection
	// (sb.Reject) refuses it with its status; any other error is logged and refuses it
	// with 500, so a failed check never lets a client in.
	OnWebsocketConnect(ctx *Context, request *HTTPRequest) error
	// OnMessage: one complete message arrived, byte-exact.
	OnMessage(ctx *Context, msg Message) error
	// OnClose: the client is gone; bound is what it was bound to.
	OnClose(ctx *Context, bound Bound) error
	// OnTimer: a timer set by this instance fired.
	OnTimer(id uint64) error
	// OnWorkerStop: the instance is being retired (stop, hot swap); it has bounded time.
	OnWorkerStop(workerID uint32) error
}

// BaseHandler implements every Handler method as doing nothing; embed it.
//
// Its client-event methods (OnConnect, OnWebsocketConnect, OnMessage, OnClose) also tell the
// host that the plugin leaves that event to them; the host then stops calling it for this
// build of the plugin, which saves a call per event (a handshake is accepted without one).
// An override that calls the embedded BaseHandler's method loses those events.
type BaseHandler struct{}

func (BaseHandler) OnWorkerStart(uint32) error { return nil }

func (BaseHandler) OnConnect(*Context) error {
	api.Unhandled(api.ClientHandler_OnConnect)
	return nil
}

func (BaseHandler) OnWebsocketConnect(*Context, *HTTPRequest) error {
	api.Unhandled(api.ClientHandler_OnWebsocketConnect)
	return nil
}

func (BaseHandler) OnMessage(*Context, Message) error {
	api.Unhandled(api.ClientHandler_OnMessage)
	return nil
}

func (BaseHandler) OnClose(*Context, Bound) error {
	api.Unhandled(api.ClientHandler_OnClose)
	return nil
}

func (BaseHandler) OnTimer(uint64) error      { return nil }
func (BaseHandler) OnWorkerStop(uint32) error { return nil }

// registered is the registered Handler; nil until Register.
var registered Handler

// Register makes h the plugin's handler; call it once, from init. A plugin that never
// calls it is refused at start (its on-worker-start traps with a log line saying so).
func Register(h Handler) {
	if h == nil {
		panic("switchboard: Register(nil)")
	}
	if registered != nil {
		panic("switchboard: Register called twice")
	}
	registered = h
}

func init() { events.Dispatch = dispatcher{} }

// unregistered is the start of a plugin that forgot Register: it says why in the host's log
// and traps, so the host refuses the version instead of serving a plugin that accepts every
// handshake and ignores every event.
const unregistered = "no handler registered: call sb.Register(handler) in init"

// noHandlerRegistered_CallSbRegisterInInit logs why and traps. Its name is the message a
// `switchboard check` or a refused deploy shows: the host's refusal quotes the trap's wasm
// backtrace, which names this function.
//
//go:noinline
func noHandlerRegistered_CallSbRegisterInInit() {
	Log(LevelError, unregistered)
	panic("switchboard: " + unregistered)
}

// dispatcher turns raw events (whose strings point into the argument arena) into SDK values
// (copies), frees the arena, then calls the handler and applies the error policy.
type dispatcher struct{}

func (dispatcher) h() Handler {
	if registered == nil {
		noHandlerRegistered_CallSbRegisterInInit()
	}
	// The arguments are copied: the arena is free for the handler's imports.
	witRuntime.Reset()
	return registered
}

// unhandled logs an error a handler let escape, as every SDK does.
func unhandled(export string, err error) {
	kind, detail := kindAndDetail(err)
	Log(LevelWarn, "unhandled error in "+export+": "+kind+": "+detail)
}

func (d dispatcher) OnWorkerStart(id uint32) {
	if err := d.h().OnWorkerStart(id); err != nil {
		unhandled("on-worker-start", err)
	}
}

func (d dispatcher) OnConnect(c raw.Context) {
	ctx := contextFromRaw(c)
	if err := d.h().OnConnect(ctx); err != nil {
		unhandled("on-connect", err)
	}
}

func (d dispatcher) OnWebsocketConnect(c raw.Context, r raw.HttpRequest) *raw.Rejection {
	ctx := contextFromRaw(c)
	req := &HTTPRequest{Path: strings.Clone(r.Path), Query: strings.Clone(r.Query)}
	for _, h := range r.Headers {
		req.Headers = append(req.Headers, [2]string{strings.Clone(h.F0), strings.Clone(h.F1)})
	}
	err := d.h().OnWebsocketConnect(ctx, req)
	if err == nil {
		return nil
	}
	var rejection *Rejection
	if errors.As(err, &rejection) {
		return &raw.Rejection{Status: rejection.Status, Reason: rejection.Reason}
	}
	unhandled("on-websocket-connect", err)
	return &raw.Rejection{Status: 500, Reason: "internal error"}
}

func (d dispatcher) OnMessage(c raw.Context, m raw.Message) {
	ctx, msg := contextFromRaw(c), fromRawMessage(m)
	if err := d.h().OnMessage(ctx, msg); err != nil {
		unhandled("on-message", err)
	}
}

func (d dispatcher) OnClose(c raw.Context, b raw.Bound) {
	ctx, bound := contextFromRaw(c), Bound{Groups: cloneStrings(b.Groups)}
	if b.Uid.IsSome() {
		bound.uid, bound.hasUID = strings.Clone(b.Uid.Some()), true
	}
	if err := d.h().OnClose(ctx, bound); err != nil {
		unhandled("on-close", err)
	}
}

func (d dispatcher) OnTimer(id uint64) {
	if err := d.h().OnTimer(id); err != nil {
		unhandled("on-timer", err)
	}
}

func (d dispatcher) OnWorkerStop(id uint32) {
	if err := d.h().OnWorkerStop(id); err != nil {
		unhandled("on-worker-stop", err)
	}
}
