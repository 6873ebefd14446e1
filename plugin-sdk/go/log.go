package switchboard

// Logging into the host's log: Log and Logf. A log/slog handler is in the package hostlog
// (its own package: log/slog adds about 2 MiB to a plugin, so only the plugins that use it
// pay for it).

import (
	"fmt"

	api "switchboard.dev/sdk/internal/bindings/imports/switchboard_plugin_api"
	raw "switchboard.dev/sdk/internal/bindings/imports/switchboard_plugin_types"
)

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

// Log writes a line to the host's log, tagged with the app's name and version.
func Log(level LogLevel, message string) { api.Log(raw.LogLevel(level), message) }

// Logf writes a formatted line to the host's log.
func Logf(level LogLevel, format string, a ...any) { Log(level, fmt.Sprintf(format, a...)) }
