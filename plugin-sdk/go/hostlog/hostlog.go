// Package hostlog is a log/slog handler that writes into the Switchboard host's log, tagged
// with the app's name and version like sb.Log. Importing it makes it slog's default (at
// level Info), so slog.Info(…), and the standard log package, write there:
//
//	import (
//		"log/slog"
//
//		_ "switchboard.dev/sdk/hostlog"
//	)
//
//	slog.Info("joined", "room", room, "client", ctx.Client)  // joined room=lobby client=…
//
// For another level: slog.SetDefault(slog.New(hostlog.NewHandler(slog.LevelDebug))).
// It is a package of its own because log/slog adds about 2 MiB to a plugin.
package hostlog

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"unicode"

	sb "switchboard.dev/sdk"
)

// Handler is a slog.Handler that writes each record as one host log line: the message,
// then its attributes as key=value (groups as dotted keys). The host adds the time, the
// level and the app. slog's levels map to the host's: below Debug is trace.
type Handler struct {
	level slog.Leveler
	attrs string // preformatted by WithAttrs
	group string // the dotted prefix of WithGroup, "" or ending in "."
}

// NewHandler makes a handler that drops records below level (nil: slog.LevelInfo).
func NewHandler(level slog.Leveler) *Handler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &Handler{level: level}
}

func init() { slog.SetDefault(slog.New(NewHandler(nil))) }

// Enabled reports whether records of level are written.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// Handle writes r to the host's log.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.group, a)
		return true
	})
	sb.Log(levelOf(r.Level), b.String())
	return nil
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		appendAttr(&b, h.group, a)
	}
	return &Handler{level: h.level, attrs: b.String(), group: h.group}
}

// WithGroup returns a handler that puts the following attributes under name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Handler{level: h.level, attrs: h.attrs, group: h.group + name + "."}
}

func levelOf(l slog.Level) sb.LogLevel {
	switch {
	case l < slog.LevelDebug:
		return sb.LevelTrace
	case l < slog.LevelInfo:
		return sb.LevelDebug
	case l < slog.LevelWarn:
		return sb.LevelInfo
	case l < slog.LevelError:
		return sb.LevelWarn
	}
	return sb.LevelError
}

func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		inner := prefix
		if a.Key != "" {
			inner += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			appendAttr(b, inner, g)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix)
	b.WriteString(a.Key)
	b.WriteByte('=')
	text := a.Value.String()
	if needsQuotes(text) {
		text = strconv.Quote(text)
	}
	b.WriteString(text)
}

func needsQuotes(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if unicode.IsSpace(r) || r == '"' || r == '=' || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}
