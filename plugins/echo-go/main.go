// Echo: sends every message back to its sender unchanged (text stays text, binary stays binary).
package main

import sb "switchboard.dev/sdk"

// Echo keeps no state.
type Echo struct{ sb.BaseHandler }

// OnMessage sends the message back; a failure is logged by the SDK (the event still ends
// normally).
func (Echo) OnMessage(ctx *sb.Context, msg sb.Message) error {
	return ctx.Reply(msg)
}

func init() { sb.Register(Echo{}) }

func main() {}
