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

// Dispatch is set by switchboard.Register; events before that are ignored.
var Dispatch Dispatcher

// Every export ends by resetting the argument arena: the dispatcher has copied what it kept.

func OnWorkerStart(workerID uint32) {
	defer witRuntime.Reset()
	if Dispatch != nil {
		Dispatch.OnWorkerStart(workerID)
	}
}

func OnConnect(ctx switchboard_plugin_types.Context) {
	defer witRuntime.Reset()
	if Dispatch != nil {
		Dispatch.OnConnect(ctx)
	}
}

func OnWebsocketConnect(ctx switchboard_plugin_types.Context, request switchboard_plugin_types.HttpRequest) witTypes.Result[witTypes.Unit, switchboard_plugin_types.Rejection] {
	defer witRuntime.Reset()
	if Dispatch != nil {
		if r := Dispatch.OnWebsocketConnect(ctx, request); r != nil {
			return witTypes.Err[witTypes.Unit](*r)
		}
	}
	return witTypes.Ok[witTypes.Unit, switchboard_plugin_types.Rejection](witTypes.Unit{})
}

func OnMessage(ctx switchboard_plugin_types.Context, message switchboard_plugin_types.Message) {
	defer witRuntime.Reset()
	if Dispatch != nil {
		Dispatch.OnMessage(ctx, message)
	}
}

func OnClose(ctx switchboard_plugin_types.Context, bound switchboard_plugin_types.Bound) {
	defer witRuntime.Reset()
	if Dispatch != nil {
		Dispatch.OnClose(ctx, bound)
	}
}

func OnTimer(id uint64) {
	defer witRuntime.Reset()
	if Dispatch != nil {
		Dispatch.OnTimer(id)
	}
}

func OnWorkerStop(workerID uint32) {
	defer witRuntime.Reset()
	if Dispatch != nil {
		Dispatch.OnWorkerStop(workerID)
	}
}
