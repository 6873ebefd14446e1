// Echo: sends every message back to its sender unchanged (text stays text, binary stays binary).
package main

import sb "switchboard.dev/sdk"

// Echo keeps no state.
type Echo struct{ sb.BaseHandler }

// OnMessage sends the message back.
func (Echo) OnMessage(ctx *sb.Context, msg sb.Message) {
	if err := ctx.Reply(msg); err != nil {
		sb.Warnf("echo to %s failed: %v", ctx.Client, err)
	}
}

func init() { sb.Register(Echo{}) }

func main() {}
