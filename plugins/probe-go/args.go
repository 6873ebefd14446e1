package main

// Reading a request's arguments, as plugins/probe/src/lib.rs does: null counts as absent,
// strings go to the host unvalidated.

import (
	"encoding/json"
	"fmt"
	"strconv"

	sb "switchboard.dev/sdk"
)

// badRequest is a request the probe cannot run (kind bad-request).
type badRequest string

func (b badRequest) Error() string { return string(b) }

func bad(format string, a ...any) error { return badRequest(fmt.Sprintf(format, a...)) }

// args are a request's arguments.
type args map[string]any

func (a args) get(name string) (any, bool) {
	v, ok := a[name]
	return v, ok && v != nil
}

// reader reads one request's arguments and keeps the first error, so a command reads all
// it needs and then checks once (as bufio.Scanner does); a failed read returns the zero value.
type reader struct {
	args args
	err  error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) str(name string) string {
	v, ok := r.args.get(name)
	if !ok {
		r.fail(bad("`%s` is missing", name))
		return ""
	}
	s, isString := v.(string)
	if !isString {
		r.fail(bad("`%s` must be a string", name))
	}
	return s
}

// optStr is "" when absent: the SDK's "no cursor".
func (r *reader) optStr(name string) string {
	if _, ok := r.args.get(name); !ok {
		return ""
	}
	return r.str(name)
}

// boolOr is def when absent, and a missing argument when def is nil.
func (r *reader) boolOr(name string, def *bool) bool {
	v, ok := r.args.get(name)
	if !ok {
		if def == nil {
			r.fail(bad("`%s` is missing", name))
			return false
		}
		return *def
	}
	b, isBool := v.(bool)
	if !isBool {
		r.fail(bad("`%s` must be a boolean", name))
	}
	return b
}

var no = false

func (r *reader) u64(name string) uint64 {
	v, ok := r.args.get(name)
	if !ok {
		r.fail(bad("`%s` is missing", name))
		return 0
	}
	n, isNumber := v.(json.Number)
	u, err := strconv.ParseUint(n.String(), 10, 64)
	if !isNumber || err != nil {
		r.fail(bad("`%s` must be a non-negative integer", name))
		return 0
	}
	return u
}

func (r *reader) u32(name string) uint32 {
	n := r.u64(name)
	if n > 0xffffffff {
		r.fail(bad("`%s` must fit in a u32", name))
		return 0
	}
	return uint32(n)
}

// strings is empty when absent.
func (r *reader) strings(name string) []string {
	v, ok := r.args.get(name)
	if !ok {
		return []string{}
	}
	items, isArray := v.([]any)
	out := make([]string, len(items))
	for i, item := range items {
		s, isString := item.(string)
		if !isString {
			isArray = false
			break
		}
		out[i] = s
	}
	if !isArray {
		r.fail(bad("`%s` must be an array of strings", name))
		return nil
	}
	return out
}

func (r *reader) message(name string) sb.Message {
	v, ok := r.args.get(name)
	if !ok {
		r.fail(bad("`%s` is missing", name))
		return sb.Message{}
	}
	m, err := messageFromJSON(v)
	r.fail(err)
	return m
}

func messageFromJSON(v any) (sb.Message, error) {
	const shape = "a message is {\"text\": string} or {\"binary\": [bytes]}"
	switch m := v.(type) {
	case string:
		return sb.Text(m), nil
	case map[string]any:
		text, hasText := m["text"]
		binary, hasBinary := m["binary"]
		if hasText && !hasBinary {
			if s, ok := text.(string); ok {
				return sb.Text(s), nil
			}
		}
		if hasBinary && !hasText {
			if items, ok := binary.([]any); ok {
				data := make([]byte, len(items))
				for i, item := range items {
					n, isNumber := item.(json.Number)
					b, err := strconv.ParseUint(string(n), 10, 8)
					if !isNumber || err != nil {
						return sb.Message{}, bad("`binary` must be an array of bytes (0..=255)")
					}
					data[i] = byte(b)
				}
				return sb.Binary(data), nil
			}
		}
	}
	return sb.Message{}, bad(shape)
}

func (r *reader) session(name string) sb.Session {
	v, _ := r.args.get(name)
	m, isObject := v.(map[string]any)
	if !isObject {
		r.fail(bad("`%s` must be an object of strings", name))
		return nil
	}
	s := make(sb.Session, len(m))
	for k, v := range m {
		text, isString := v.(string)
		if !isString {
			r.fail(bad("`%s` values must be strings", name))
			return nil
		}
		s[k] = text
	}
	return s
}

var fieldNames = map[string]sb.InfoFields{
	"remote_ip": sb.FieldRemoteIP, "remote-ip": sb.FieldRemoteIP,
	"remote_port": sb.FieldRemotePort, "remote-port": sb.FieldRemotePort,
	"uid": sb.FieldUID, "session": sb.FieldSession, "groups": sb.FieldGroups, "system": sb.FieldSystem,
}

func (r *reader) fields(name string) sb.InfoFields {
	v, ok := r.args.get(name)
	if !ok {
		return sb.AllFields
	}
	switch f := v.(type) {
	case string:
		if f == "all" {
			return sb.AllFields
		}
	case json.Number:
		n, err := strconv.ParseUint(string(f), 10, 8)
		if err != nil {
			r.fail(bad("`%s` as a number must be 0..=255", name))
			return 0
		}
		return sb.InfoFields(n) & sb.AllFields
	case []any:
		var fields sb.InfoFields
		for _, item := range f {
			s, _ := item.(string)
			bit, known := fieldNames[s]
			if !known {
				r.fail(bad("unknown field %v in `%s`", item, name))
				return 0
			}
			fields |= bit
		}
		return fields
	}
	r.fail(bad("`%s` must be \"all\", an array of field names or a number", name))
	return 0
}

var levels = map[string]sb.LogLevel{
	"trace": sb.LevelTrace, "debug": sb.LevelDebug, "info": sb.LevelInfo,
	"warn": sb.LevelWarn, "error": sb.LevelError,
}

func (r *reader) level(name string) sb.LogLevel {
	s := r.str(name)
	level, known := levels[s]
	if !known {
		r.fail(bad("unknown level %q", s))
	}
	return level
}
