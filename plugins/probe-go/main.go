// Probe in Go: the JSON protocol of plugins/probe/README.md for the API commands, so the
// end-to-end API suite (tests/e2e/api.rs) runs against the Go SDK as against the Rust one.
// kv, http, read-file, connect, env, alloc, busy and spin fail with the kind `unsupported`,
// as in probe-js and probe-py. Besides the protocol: `unhandled` and `counter` (the SDK's error policy)
// and `session-bytes` (the argument arena, see README.md).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	sb "switchboard.dev/sdk"
	_ "switchboard.dev/sdk/hostlog"
)

// observers is the group that gets close and timer notices.
const observers = "observers"

// Probe is the probe's state: the worker id it was started with, and the counter of
// `unhandled` requests (kept in the instance, so a test can see the instance survived).
type Probe struct {
	worker  *uint32
	counter uint64
}

// errUnsupported answers a command this probe leaves out.
var errUnsupported = errors.New("unsupported")

var unsupported = map[string]bool{
	"kv-get": true, "kv-set": true, "kv-set-bytes": true, "kv-delete": true, "kv-incr": true,
	"kv-keys": true, "http": true, "read-file": true, "connect": true, "env": true,
	"alloc": true, "busy": true, "spin": true, "var": true,
}

func sessionJSON(s sb.Session) map[string]string {
	if s == nil {
		return map[string]string{}
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func infoJSON(info sb.ClientInfo) map[string]any {
	m := map[string]any{"client": info.Client}
	if ip, ok := info.RemoteIP(); ok {
		m["remote_ip"] = ip
	}
	if port, ok := info.RemotePort(); ok {
		m["remote_port"] = port
	}
	if uid, ok := info.UID(); ok {
		m["uid"] = uid
	}
	if session, ok := info.Session(); ok {
		m["session"] = sessionJSON(session)
	}
	if groups, ok := info.Groups(); ok {
		m["groups"] = nonNil(groups)
	}
	if s, ok := info.System(); ok {
		m["system"] = map[string]any{
			"protocol": s.Protocol, "connected_at_ms": s.ConnectedAtMs,
			"last_active_ms": s.LastActiveMs, "bytes_in": s.BytesIn, "bytes_out": s.BytesOut,
			"gateway_id": s.GatewayID,
		}
	}
	return m
}

func sessionsJSON(page []sb.ClientSession) [][2]any {
	out := make([][2]any, len(page))
	for i, row := range page {
		out[i] = [2]any{row.Client, sessionJSON(row.Session)}
	}
	return out
}

// none is the `ok` of an op that returns nothing.
var none any

// run runs one request; its result is the reply's `ok`. Each command reads its arguments,
// then checks the reader's first error once, before it calls the API.
func (p *Probe) run(ctx *sb.Context, op string, a args) (any, error) {
	if unsupported[op] {
		return nil, errUnsupported
	}
	r := &reader{args: a}
	switch op {
	case "send-to-client":
		client, msg := r.str("client"), r.message("message")
		if r.err != nil {
			return nil, r.err
		}
		return none, sb.SendToClient(client, msg)
	case "send-to-uid", "send-to-group":
		name := r.str(map[string]string{"send-to-uid": "uid", "send-to-group": "group"}[op])
		msg, without := r.message("message"), r.strings("without")
		if r.err != nil {
			return nil, r.err
		}
		if op == "send-to-uid" {
			return none, sb.SendToUID(name, msg, without...)
		}
		return none, sb.SendToGroup(name, msg, without...)
	case "send-to-all":
		msg, without := r.message("message"), r.strings("without")
		if r.err != nil {
			return nil, r.err
		}
		return none, sb.SendToAll(msg, without...)
	case "send-to-uids", "send-to-groups":
		names := r.strings(map[string]string{"send-to-uids": "uids", "send-to-groups": "groups"}[op])
		msg, without := r.message("message"), r.strings("without")
		if r.err != nil {
			return nil, r.err
		}
		if op == "send-to-uids" {
			return none, sb.SendToUIDs(names, msg, without...)
		}
		return none, sb.SendToGroups(names, msg, without...)
	case "send-to-clients":
		clients, msg := r.strings("clients"), r.message("message")
		if r.err != nil {
			return nil, r.err
		}
		return none, sb.SendToClients(clients, msg)
	case "is-online":
		return withStr(r, "client", sb.IsOnline)
	case "is-uid-online":
		return withStr(r, "uid", sb.IsUIDOnline)
	case "get-client-count":
		return sb.GetClientCount()
	case "get-client-count-by-group":
		return withStr(r, "group", sb.GetClientCountByGroup)
	case "get-uid-count-by-group":
		return withStr(r, "group", sb.GetUIDCountByGroup)
	case "get-uid-count":
		v, ok := a.get("unique_percent")
		if !ok {
			return sb.GetUIDCount()
		}
		n, isNumber := v.(json.Number)
		f, err := n.Float64()
		if !isNumber || err != nil {
			return nil, bad("`unique_percent` must be a number or null")
		}
		return sb.GetUIDCountEstimate(float32(f))
	case "get-client-list", "get-uid-list-paged", "get-group-list-paged":
		after, limit := r.optStr("after"), r.u32("limit")
		if r.err != nil {
			return nil, r.err
		}
		fetch := map[string]func(string, uint32) ([]string, error){
			"get-client-list": sb.GetClientList, "get-uid-list-paged": sb.GetUIDListPaged,
			"get-group-list-paged": sb.GetGroupListPaged,
		}[op]
		return list(fetch(after, limit))
	case "get-client-list-by-group", "get-client-list-by-uid", "get-uid-list-by-group-paged":
		key := map[string]string{"get-client-list-by-group": "group", "get-client-list-by-uid": "uid", "get-uid-list-by-group-paged": "group"}[op]
		name, after, limit := r.str(key), r.optStr("after"), r.u32("limit")
		if r.err != nil {
			return nil, r.err
		}
		fetch := map[string]func(string, string, uint32) ([]string, error){
			"get-client-list-by-group": sb.GetClientListByGroup, "get-client-list-by-uid": sb.GetClientListByUID,
			"get-uid-list-by-group-paged": sb.GetUIDListByGroupPaged,
		}[op]
		return list(fetch(name, after, limit))
	case "get-uid-list", "get-group-list":
		unique := r.boolOr("unique", nil)
		if r.err != nil {
			return nil, r.err
		}
		if op == "get-uid-list" {
			return list(sb.GetUIDList(unique))
		}
		return list(sb.GetGroupList(unique))
	case "get-uid-list-by-group":
		group, unique := r.str("group"), r.boolOr("unique", nil)
		if r.err != nil {
			return nil, r.err
		}
		return list(sb.GetUIDListByGroup(group, unique))
	case "get-client-sessions", "get-client-sessions-by-group":
		group := ""
		if op == "get-client-sessions-by-group" {
			group = r.str("group")
		}
		after, limit := r.optStr("after"), r.u32("limit")
		if r.err != nil {
			return nil, r.err
		}
		var page []sb.ClientSession
		var err error
		if op == "get-client-sessions" {
			page, err = sb.GetClientSessions(after, limit)
		} else {
			page, err = sb.GetClientSessionsByGroup(group, after, limit)
		}
		if err != nil {
			return nil, err
		}
		return sessionsJSON(page), nil
	case "get-client-count-by-groups":
		groups := r.strings("groups")
		if r.err != nil {
			return nil, r.err
		}
		return sb.GetClientCountByGroups(groups)
	case "get-client-ids-by-uids":
		uids := r.strings("uids")
		if r.err != nil {
			return nil, r.err
		}
		m, err := sb.GetClientIDsByUIDs(uids)
		for k, v := range m {
			m[k] = nonNil(v)
		}
		return m, err
	case "get-client-info":
		client, fields := r.str("client"), r.fields("fields")
		if r.err != nil {
			return nil, r.err
		}
		info, ok, err := sb.GetClientInfo(client, fields)
		if err != nil || !ok {
			return nil, err
		}
		return infoJSON(info), nil
	case "close-client":
		client, force := r.str("client"), r.boolOr("force", &no)
		if r.err != nil {
			return nil, r.err
		}
		return none, sb.CloseClient(client, force)
	case "close-client-with":
		client, msg := r.str("client"), r.message("message")
		if r.err != nil {
			return nil, r.err
		}
		return none, sb.CloseClientWith(client, msg)
	case "bind-uid", "join-group", "leave-group":
		client := r.str("client")
		name := r.str(map[string]string{"bind-uid": "uid", "join-group": "group", "leave-group": "group"}[op])
		if r.err != nil {
			return nil, r.err
		}
		call := map[string]func(string, string) error{"bind-uid": sb.BindUID, "join-group": sb.JoinGroup, "leave-group": sb.LeaveGroup}[op]
		return none, call(client, name)
	case "unbind-uid", "delete-session":
		client := r.str("client")
		if r.err != nil {
			return nil, r.err
		}
		if op == "unbind-uid" {
			return none, sb.UnbindUID(client)
		}
		return none, sb.DeleteSession(client)
	case "ungroup":
		group := r.str("group")
		if r.err != nil {
			return nil, r.err
		}
		return none, sb.Ungroup(group)
	case "set-session", "update-session":
		client, session := r.str("client"), r.session("session")
		if r.err != nil {
			return nil, r.err
		}
		if op == "set-session" {
			return none, sb.SetSession(client, session)
		}
		return none, sb.UpdateSession(client, session)
	case "get-session":
		client := r.str("client")
		if r.err != nil {
			return nil, r.err
		}
		session, ok, err := sb.GetSession(client)
		if err != nil || !ok {
			return nil, err
		}
		return sessionJSON(session), nil
	case "set-timer":
		after, repeat := r.u64("after_ms"), r.boolOr("repeat", &no)
		if r.err != nil {
			return nil, r.err
		}
		return sb.SetTimer(after, repeat)
	case "clear-timer":
		id := r.u64("timer")
		if r.err != nil {
			return nil, r.err
		}
		sb.ClearTimer(id)
		return none, nil
	case "log":
		level, text := r.level("level"), r.str("message")
		if r.err != nil {
			return nil, r.err
		}
		sb.Log(level, text)
		return none, nil
	case "print":
		// Plain WASI output: the host logs stdout at info and stderr at warn.
		text := r.str("message")
		if r.err != nil {
			return nil, r.err
		}
		fmt.Println(text)
		fmt.Fprintln(os.Stderr, text+" (stderr)")
		return none, nil
	case "whoami":
		var uid any
		if u, ok := ctx.UID(); ok {
			uid = u
		}
		return map[string]any{
			"client": ctx.Client, "remote_addr": ctx.RemoteAddr, "gateway_id": ctx.GatewayID,
			"uid": uid, "session": sessionJSON(ctx.Session),
		}, nil
	case "echo":
		msg := r.message("message")
		if r.err != nil {
			return nil, r.err
		}
		return none, ctx.Reply(msg)
	case "worker":
		if p.worker == nil {
			return nil, nil
		}
		return *p.worker, nil
	case "repeat":
		// Runs `request` `n` times in this one event and times it; the first failure stops it.
		n := r.u64("n")
		if r.err != nil {
			return nil, r.err
		}
		request, isObject := a["request"].(map[string]any)
		if !isObject {
			return nil, bad("`request` must be an object")
		}
		inner, isString := request["op"].(string)
		if !isString {
			return nil, bad("`request.op` must be a string")
		}
		started := time.Now()
		for range n {
			if _, err := p.run(ctx, inner, args(request)); err != nil {
				return nil, err
			}
		}
		return map[string]any{"n": n, "elapsed_us": time.Since(started).Microseconds()}, nil
	case "trap":
		panic("probe: trap requested")
	case "slog":
		// log/slog through the SDK's hostlog handler (the default once it is imported).
		text := r.str("message")
		if r.err != nil {
			return nil, r.err
		}
		slog.With("client", ctx.Client).WithGroup("req").Warn(text, "n", 1, slog.Group("g", "x", "a b"))
		slog.Debug("below the default level: dropped")
		return none, nil
	case "counter":
		return p.counter, nil
	case "session-bytes":
		return sessionBytes(r)
	}
	return nil, bad("unknown op %q", op)
}

// sessionBytes walks every client's session in pages of `page` (default the SDK's) in this
// one event, and answers {"clients": N, "bytes": total of keys and values}: more than the
// 4 MiB argument arena when the sessions are big.
func sessionBytes(r *reader) (any, error) {
	var opts []sb.PageOption
	if _, ok := r.args.get("page"); ok {
		size := r.u32("page")
		if r.err != nil {
			return nil, r.err
		}
		opts = append(opts, sb.PageSize(size))
	}
	clients, total := 0, 0
	for row, err := range sb.Sessions(opts...) {
		if err != nil {
			return nil, err
		}
		clients++
		for k, v := range row.Session {
			total += len(k) + len(v)
		}
	}
	return map[string]any{"clients": clients, "bytes": total}, nil
}

// withStr calls a query of one string argument.
func withStr[T any](r *reader, name string, call func(string) (T, error)) (any, error) {
	s := r.str(name)
	if r.err != nil {
		return nil, r.err
	}
	return call(s)
}

func list(names []string, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return nonNil(names), nil
}

// reply is one answer, as JSON text.
func reply(id any, ok any, err error) string {
	var body map[string]any
	var kind sb.ErrorKind
	var apiErr *sb.Error
	var badReq badRequest
	switch {
	case err == nil:
		body = map[string]any{"id": id, "ok": ok}
	case errors.Is(err, errUnsupported):
		detail := "not implemented by probe-go"
		body = map[string]any{"id": id, "err": map[string]any{"kind": "unsupported", "detail": detail}}
	case errors.As(err, &apiErr):
		body = map[string]any{"id": id, "err": map[string]any{"kind": string(apiErr.Kind), "detail": apiErr.Detail}}
	case errors.As(err, &kind):
		body = map[string]any{"id": id, "err": map[string]any{"kind": string(kind), "detail": err.Error()}}
	case errors.As(err, &badReq):
		body = map[string]any{"id": id, "err": map[string]any{"kind": "bad-request", "detail": string(badReq)}}
	default:
		body = map[string]any{"id": id, "err": map[string]any{"kind": "error", "detail": err.Error()}}
	}
	text, marshalErr := json.Marshal(body)
	if marshalErr != nil {
		return fmt.Sprintf(`{"id":null,"err":{"kind":"error","detail":%q}}`, marshalErr.Error())
	}
	return string(text)
}

// OnMessage answers a request, and echoes anything else.
func (p *Probe) OnMessage(ctx *sb.Context, msg sb.Message) error {
	if msg.IsBinary() || !strings.HasPrefix(strings.TrimLeft(msg.String(), " \t\r\n"), "{") {
		return ctx.Reply(msg)
	}
	decoder := json.NewDecoder(bytes.NewReader(msg.Bytes()))
	decoder.UseNumber()
	var request any
	if err := decoder.Decode(&request); err != nil {
		return ctx.Reply(sb.Text(reply(nil, nil, bad("invalid JSON: %v", err))))
	}
	a, isObject := request.(map[string]any)
	if !isObject {
		return ctx.Reply(sb.Text(reply(nil, nil, bad("a request is a JSON object"))))
	}
	id := a["id"]
	op, isString := a["op"].(string)
	if !isString {
		return ctx.Reply(sb.Text(reply(id, nil, bad("`op` must be a string"))))
	}
	if op == "unhandled" {
		// The SDK's error policy: the error escapes the handler, which the SDK logs at
		// warn; the instance, and this counter, stay.
		p.counter++
		r := &reader{args: a}
		client := r.str("client")
		if r.err != nil {
			return ctx.Reply(sb.Text(reply(id, nil, r.err)))
		}
		if err := sb.SendToClient(client, sb.Text("x")); err != nil {
			return err
		}
		return ctx.Reply(sb.Text(reply(id, none, nil)))
	}
	ok, err := p.run(ctx, op, args(a))
	return ctx.Reply(sb.Text(reply(id, ok, err)))
}

// OnWorkerStart remembers the worker id.
func (p *Probe) OnWorkerStart(id uint32) error {
	p.worker = &id
	sb.Logf(sb.LevelInfo, "probe: worker %d started", id)
	return nil
}

// OnWorkerStop says so.
func (p *Probe) OnWorkerStop(id uint32) error {
	sb.Logf(sb.LevelInfo, "probe: worker %d stopping", id)
	return nil
}

// OnConnect does nothing.
func (p *Probe) OnConnect(*sb.Context) error { return nil }

// OnWebsocketConnect acts on `?bind=U&join=G&greet=T&nick=N` (N stored as JSON) before the
// verdict, then lets an API error escape if `fail` is there (send-to-client of a malformed
// id, as the other probes do), or rejects with `reject=STATUS`.
func (p *Probe) OnWebsocketConnect(ctx *sb.Context, request *sb.HTTPRequest) error {
	var acted []error
	if uid, ok := request.QueryParam("bind"); ok {
		acted = append(acted, sb.BindUID(ctx.Client, uid))
	}
	if group, ok := request.QueryParam("join"); ok {
		acted = append(acted, sb.JoinGroup(ctx.Client, group))
	}
	if text, ok := request.QueryParam("greet"); ok {
		acted = append(acted, ctx.Reply(sb.Text(text)))
	}
	if nick, ok := request.QueryParam("nick"); ok {
		value, _ := json.Marshal(nick)
		acted = append(acted, sb.UpdateSession(ctx.Client, sb.Session{"nick": string(value)}))
	}
	for _, err := range acted {
		if err != nil {
			sb.Logf(sb.LevelWarn, "probe: on-websocket-connect: %v", err)
		}
	}
	if _, ok := request.QueryParam("fail"); ok {
		// The error policy: an API error escaping this handler refuses with 500.
		return sb.SendToClient("nope", sb.Text("x"))
	}
	if status, ok := request.QueryParam("reject"); ok {
		code, err := strconv.ParseUint(status, 10, 16)
		if err != nil {
			code = 403
		}
		return sb.Reject(uint16(code), "rejected by probe")
	}
	return nil
}

func notify(event map[string]any) error {
	text, err := json.Marshal(event)
	if err != nil {
		return err
	}
	return sb.SendToGroup(observers, sb.Text(string(text)))
}

// OnClose tells the observers.
func (p *Probe) OnClose(ctx *sb.Context, bound sb.Bound) error {
	var uid any
	if u, ok := bound.UID(); ok {
		uid = u
	}
	return notify(map[string]any{
		"event": "close", "client": ctx.Client, "uid": uid, "groups": nonNil(bound.Groups),
		"session": sessionJSON(ctx.Session),
	})
}

// OnTimer tells the observers.
func (p *Probe) OnTimer(id uint64) error {
	return notify(map[string]any{"event": "timer", "timer": id})
}

func init() { sb.Register(&Probe{}) }

func main() {}
