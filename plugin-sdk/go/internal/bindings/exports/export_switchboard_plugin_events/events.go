// Package export_switchboard_plugin_events receives the events from the generated export
// glue (wit_exports) and passes them to the SDK's dispatcher. It is written by hand: the
// glue calls these functions, the root package sets Dispatch.
package export_switchboard_plugin_events

import (
	"switchboard.dev/sdk/internal/bindings/imports/switchboard_plugin_types"
	witRuntime "switchboard.dev/sdk/internal/wit/runtime"
	witTypes "switchboard.dev/sdk/internal/wit/types"
)

// Dispatcher is implemented by the SDK root package over the plugin's Handler.
type Dispatcher interface {
	OnWorkerStart(workerID uint32)
	OnConnect(ctx switchboard_plugin_types.Context)
	OnWebsocketConnect(ctx switchboard_plugin_types.Context, request switchboard_plugin_types.HttpRequest) *switchboard_plugin_types.Rejection
	OnMessage(ctx switchboard_plugin_types.Context, message switchboard_plugin_types.Message)
	OnClose(ctx switchboard_plugin_types.Context, bound switchboard_plugin_types.Bound)
	OnTimer(id uint64)
	OnWorkerStop(workerID uint32)
}

// Dispatch is set by the SDK root package's init (always imported with this package): it
// refuses every event until switchboard.Register gives it a handler.
var Dispatch Dispatcher

// Every export ends by resetting the argument arena: the dispatcher has copied what it kept
// (and reset it already before calling the handler; this covers a dispatcher that returned
// early).

func OnWorkerStart(workerID uint32) {
	defer witRuntime.Reset()
	Dispatch.OnWorkerStart(workerID)
}

func OnConnect(ctx switchboard_plugin_types.Context) {
	defer witRuntime.Reset()
	Dispatch.OnConnect(ctx)
}

func OnWebsocketConnect(ctx switchboard_plugin_types.Context, request switchboard_plugin_types.HttpRequest) witTypes.Result[witTypes.Unit, switchboard_plugin_types.Rejection] {
	defer witRuntime.Reset()
	if r := Dispatch.OnWebsocketConnect(ctx, request); r != nil {
		return witTypes.Err[witTypes.Unit](*r)
	}
	return witTypes.Ok[witTypes.Unit, switchboard_plugin_types.Rejection](witTypes.Unit{})
}

func OnMessage(ctx switchboard_plugin_types.Context, message switchboard_plugin_types.Message) {
	defer witRuntime.Reset()
	Dispatch.OnMessage(ctx, message)
}

func OnClose(ctx switchboard_plugin_types.Context, bound switchboard_plugin_types.Bound) {
	defer witRuntime.Reset()
	Dispatch.OnClose(ctx, bound)
}

func OnTimer(id uint64) {
	defer witRuntime.Reset()
	Dispatch.OnTimer(id)
}

func OnWorkerStop(workerID uint32) {
	defer witRuntime.Reset()
	Dispatch.OnWorkerStop(workerID)
}
