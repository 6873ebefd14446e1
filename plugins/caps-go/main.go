// Caps: the app's variables and key-value store driven by text commands (the protocol of
// plugins/caps-js/README.md), so the same end-to-end test runs against every language.
package main

import (
	"errors"
	"strconv"
	"strings"
	"time"

	sb "switchboard.dev/sdk"
)

// Caps keeps no state.
type Caps struct{ sb.BaseHandler }

func run(line string) (string, error) {
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
		keys, err := sb.KV.Keys(key)
		return strings.Join(keys, ","), err
	case "http":
		response, err := sb.Get(key)
		if err != nil {
			return "", err
		}
		return strconv.Itoa(int(response.Status)) + " " + response.Text(), nil
	}
	return "unknown command " + command, nil
}

// OnMessage answers each text message with the outcome of its command.
func (Caps) OnMessage(ctx *sb.Context, msg sb.Message) {
	reply, err := run(msg.String())
	if err != nil {
		var e *sb.Error
		if errors.As(err, &e) {
			reply = "error " + string(e.Kind)
		} else {
			reply = "error " + err.Error()
		}
	}
	if err := ctx.Reply(sb.Text(reply)); err != nil {
		sb.Warnf("caps: reply failed: %v", err)
	}
}

func init() { sb.Register(Caps{}) }

func main() {}
