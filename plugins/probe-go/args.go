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

func (a args) str(name string) (string, error) {
	v, ok := a.get(name)
	if !ok {
		return "", bad("`%s` is missing", name)
	}
	s, isString := v.(string)
	if !isString {
		return "", bad("`%s` must be a string", name)
	}
	return s, nil
}

// optStr is "" when absent: the SDK's "no cursor".
func (a args) optStr(name string) (string, error) {
	if _, ok := a.get(name); !ok {
		return "", nil
	}
	return a.str(name)
}

func (a args) boolOr(name string, def *bool) (bool, error) {
	v, ok := a.get(name)
	if !ok {
		if def == nil {
			return false, bad("`%s` is missing", name)
		}
		return *def, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, bad("`%s` must be a boolean", name)
	}
	return b, nil
}

var no = false

func (a args) u64(name string) (uint64, error) {
	v, ok := a.get(name)
	if !ok {
		return 0, bad("`%s` is missing", name)
	}
	n, isNumber := v.(json.Number)
	if !isNumber {
		return 0, bad("`%s` must be a non-negative integer", name)
	}
	u, err := strconv.ParseUint(n.String(), 10, 64)
	if err != nil {
		return 0, bad("`%s` must be a non-negative integer", name)
	}
	return u, nil
}

func (a args) u32(name string) (uint32, error) {
	n, err := a.u64(name)
	if err != nil {
		return 0, err
	}
	if n > 0xffffffff {
		return 0, bad("`%s` must fit in a u32", name)
	}
	return uint32(n), nil
}

func (a args) strings(name string) ([]string, error) {
	v, ok := a.get(name)
	if !ok {
		return []string{}, nil
	}
	items, isArray := v.([]any)
	if !isArray {
		return nil, bad("`%s` must be an array of strings", name)
	}
	out := make([]string, len(items))
	for i, item := range items {
		s, isString := item.(string)
		if !isString {
			return nil, bad("`%s` must be an array of strings", name)
		}
		out[i] = s
	}
	return out, nil
}

func (a args) message(name string) (sb.Message, error) {
	v, ok := a.get(name)
	if !ok {
		return sb.Message{}, bad("`%s` is missing", name)
	}
	return messageFromJSON(v)
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

func (a args) session(name string) (sb.Session, error) {
	v, _ := a.get(name)
	m, isObject := v.(map[string]any)
	if !isObject {
		return nil, bad("`%s` must be an object of strings", name)
	}
	s := make(sb.Session, len(m))
	for k, v := range m {
		text, isString := v.(string)
		if !isString {
			return nil, bad("`%s` values must be strings", name)
		}
		s[k] = text
	}
	return s, nil
}

var fieldNames = map[string]sb.InfoFields{
	"remote_ip": sb.FieldRemoteIP, "remote-ip": sb.FieldRemoteIP,
	"remote_port": sb.FieldRemotePort, "remote-port": sb.FieldRemotePort,
	"uid": sb.FieldUID, "session": sb.FieldSession, "groups": sb.FieldGroups, "system": sb.FieldSystem,
}

func (a args) fields(name string) (sb.InfoFields, error) {
	v, ok := a.get(name)
	if !ok {
		return sb.AllFields, nil
	}
	switch f := v.(type) {
	case string:
		if f == "all" {
			return sb.AllFields, nil
		}
	case json.Number:
		n, err := strconv.ParseUint(string(f), 10, 8)
		if err != nil {
			return 0, bad("`%s` as a number must be 0..=255", name)
		}
		return sb.InfoFields(n) & sb.AllFields, nil
	case []any:
		var fields sb.InfoFields
		for _, item := range f {
			s, _ := item.(string)
			bit, known := fieldNames[s]
			if !known {
				return 0, bad("unknown field %v in `%s`", item, name)
			}
			fields |= bit
		}
		return fields, nil
	}
	return 0, bad("`%s` must be \"all\", an array of field names or a number", name)
}

var levels = map[string]sb.LogLevel{
	"trace": sb.LevelTrace, "debug": sb.LevelDebug, "info": sb.LevelInfo,
	"warn": sb.LevelWarn, "error": sb.LevelError,
}

func (a args) level(name string) (sb.LogLevel, error) {
	s, err := a.str(name)
	if err != nil {
		return 0, err
	}
	level, known := levels[s]
	if !known {
		return 0, bad("unknown level %q", s)
	}
	return level, nil
}
