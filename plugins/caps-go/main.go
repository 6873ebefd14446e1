// Caps: the app's variables and key-value store driven by text commands (the protocol of
// plugins/caps-js/README.md), so the same end-to-end test runs against every language.
package main

import (
	"errors"
	"strconv"
	"strings"
	"time"

	sb "switchboard.dev/sdk"
	"switchboard.dev/sdk/sessionjson"
)

// Caps keeps no state.
type Caps struct{ sb.BaseHandler }

// Profile is the JSON value the parity commands keep in the session.
type Profile struct {
	Nick  string   `json:"nick"`
	Rooms []string `json:"rooms"`
}

// parity runs the GatewayWorker-parity commands: a JSON session value, list sends, bulk
// sessions and counts.
func parity(ctx *sb.Context, command, key, value string) (string, error) {
	switch command {
	case "nick":
		if err := sessionjson.Set(ctx.Client, "profile", Profile{Nick: key, Rooms: []string{"lobby"}}); err != nil {
			return "", err
		}
		if err := sb.JoinGroup(ctx.Client, "caps"); err != nil {
			return "", err
		}
		return "ok", sb.BindUID(ctx.Client, key)
	case "who":
		members, err := sb.GetClientSessionsByGroup("caps", "", 10)
		if err != nil {
			return "", err
		}
		var seen []string
		for _, m := range members {
			var p Profile
			sessionjson.Get(m.Session, "profile", &p)
			room := ""
			if len(p.Rooms) > 0 {
				room = p.Rooms[0]
			}
			seen = append(seen, p.Nick+"@"+room)
		}
		counts, err := sb.GetClientCountByGroups([]string{"caps", "none"})
		if err != nil {
			return "", err
		}
		ids, err := sb.GetClientIDsByUIDs([]string{key})
		if err != nil {
			return "", err
		}
		uids, err := sb.Collect(sb.UIDs())
		if err != nil {
			return "", err
		}
		return strconv.FormatUint(counts["caps"], 10) + "+" + strconv.FormatUint(counts["none"], 10) +
			" " + strings.Join(seen, ",") + " " + strings.Join(uids, ",") + " " + strconv.Itoa(len(ids[key])), nil
	case "notice":
		uids, err := sb.GetUIDListPaged("", 1000)
		if err != nil {
			return "", err
		}
		if err := sb.SendToUIDs(uids, sb.Text(strings.TrimSpace(key+" "+value))); err != nil {
			return "", err
		}
		if err := sb.SendToGroups([]string{"caps"}, sb.Text("to caps"), ctx.Client); err != nil {
			return "", err
		}
		return "ok", sb.SendToClients([]string{ctx.Client, ctx.Client}, sb.Text("to me"))
	case "bye":
		return "ok", sb.CloseClientWith(ctx.Client, sb.Text(key))
	}
	return "unknown command " + command, nil
}

func run(ctx *sb.Context, line string) (string, error) {
	command, rest, _ := strings.Cut(line, " ")
	key, value, _ := strings.Cut(rest, " ")
	switch command {
	case "var":
		if v, ok := sb.Variables.Get(key); ok {
			return v, nil
		}
		return "(none)", nil
	case "set":
		return "ok", sb.KV.SetString(key, value)
	case "setttl":
		ms, text, _ := strings.Cut(value, " ")
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil {
			return "", err
		}
		return "ok", sb.KV.SetWithTTL(key, []byte(text), time.Duration(n)*time.Millisecond)
	case "get":
		v, ok, err := sb.KV.GetString(key)
		if !ok && err == nil {
			return "(none)", nil
		}
		return v, err
	case "del":
		return "ok", sb.KV.Delete(key)
	case "incr":
		delta := int64(1)
		if value != "" {
			d, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return "", err
			}
			delta = d
		}
		n, err := sb.KV.Increment(key, delta)
		return strconv.FormatInt(n, 10), err
	case "keys":
		keys, err := sb.Collect(sb.KV.Keys(key))
		return strings.Join(keys, ","), err
	case "http":
		response, err := sb.Get(key)
		if err != nil {
			return "", err
		}
		return strconv.Itoa(int(response.Status)) + " " + response.Text(), nil
	}
	return parity(ctx, command, key, value)
}

// OnMessage answers each text message with the outcome of its command.
func (Caps) OnMessage(ctx *sb.Context, msg sb.Message) error {
	reply, err := run(ctx, msg.String())
	if err != nil {
		var kind sb.ErrorKind
		if errors.As(err, &kind) {
			reply = "error " + string(kind)
		} else {
			reply = "error " + err.Error()
		}
	}
	return ctx.Reply(sb.Text(reply))
}

func init() { sb.Register(Caps{}) }

func main() {}
