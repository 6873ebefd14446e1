// Package sessionjson keeps JSON values in a client's session: PHP sessions hold nested
// arrays, while a Switchboard session maps strings to strings (what the WIT carries).
//
// It is a package of its own because encoding/json adds about 370 KiB to a plugin: only the
// plugins that import it pay for it.
//
//	var p Profile
//	if sessionjson.Get(ctx.Session, "profile", &p) { … }
//	err := sessionjson.Set(ctx.Client, "profile", p)
package sessionjson

import (
	"encoding/json"
	"fmt"

	sb "switchboard.dev/sdk"
)

// Get parses the session value under key as JSON into v; false if the key is absent or its
// value does not parse into v.
func Get(s sb.Session, key string, v any) bool {
	text, ok := s[key]
	return ok && json.Unmarshal([]byte(text), v) == nil
}

// Set stores v as JSON under key in the client's session, keeping the other keys.
func Set(client, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return &sb.Error{Kind: sb.ErrInvalidArgument, Detail: fmt.Sprintf("session key %q: %v", key, err)}
	}
	return sb.UpdateSession(client, sb.Session{key: string(data)})
}
