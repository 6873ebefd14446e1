package switchboard

// What an app's [apps.NAME] table grants beyond the API: its variables (Variables) and its
// own key-value store (KV). Outbound HTTP is in http.go.

import (
	"bytes"
	"iter"
	"strings"
	"time"

	kvraw "switchboard.dev/sdk/internal/bindings/imports/switchboard_plugin_kv"
	varsraw "switchboard.dev/sdk/internal/bindings/imports/switchboard_plugin_variables"
	wit "switchboard.dev/sdk/internal/wit/types"
)

// The error kinds of the key-value store (besides ErrTooLarge and ErrInvalidArgument).
const (
	ErrInvalidKey  ErrorKind = "invalid-key"  // empty or over 1024 bytes
	ErrNotANumber  ErrorKind = "not-a-number" // Increment of a value that is no integer
	ErrUnavailable ErrorKind = "unavailable"  // the store failed or did not answer in time
)

// VariablesOf is the type of Variables.
type VariablesOf struct{}

// Variables are the app's [apps.NAME.variables]: Variables.Get("auth_url").
var Variables VariablesOf

// Get returns the value of variable name, and whether the app has it.
func (VariablesOf) Get(name string) (string, bool) {
	defer release(hold())
	v := varsraw.Get(name)
	if v.IsNone() {
		return "", false
	}
	return strings.Clone(v.Some()), true
}

// Store is the type of KV.
type Store struct{}

// KV is the app's key-value store: shared by every instance of the app, invisible to other
// apps, kept across restarts and hot swaps. Keys are non-empty strings of at most 1024 bytes,
// values at most 1 000 000 bytes. Errors are *Error with a kind: ErrInvalidKey, ErrTooLarge,
// ErrNotANumber, ErrInvalidArgument or ErrUnavailable.
var KV Store

func fromKvError(e kvraw.KvError) error {
	switch e.Tag() {
	case kvraw.KvError_InvalidKey:
		return &Error{ErrInvalidKey, strings.Clone(e.InvalidKey())}
	case kvraw.KvError_TooLarge:
		return &Error{ErrTooLarge, strings.Clone(e.TooLarge())}
	case kvraw.KvError_NotANumber:
		return &Error{ErrNotANumber, strings.Clone(e.NotANumber())}
	case kvraw.KvError_InvalidArgument:
		return &Error{ErrInvalidArgument, strings.Clone(e.InvalidArgument())}
	default:
		return &Error{ErrUnavailable, strings.Clone(e.Unavailable())}
	}
}

// Get returns the value of key, and whether it is set (and not expired).
func (Store) Get(key string) ([]byte, bool, error) {
	defer release(hold())
	r := kvraw.Get(key)
	if r.IsErr() {
		return nil, false, fromKvError(r.Err())
	}
	v := r.Ok()
	if v.IsNone() {
		return nil, false, nil
	}
	// The value is in the arena, given back when this returns: the caller gets a copy.
	return bytes.Clone(v.Some()), true, nil
}

// GetString is Get with the value as a string.
func (s Store) GetString(key string) (string, bool, error) {
	v, ok, err := s.Get(key)
	return string(v), ok, err
}

func (Store) set(key string, value []byte, ttl wit.Option[uint64]) error {
	defer release(hold())
	r := kvraw.Set(key, value, ttl)
	if r.IsErr() {
		return fromKvError(r.Err())
	}
	return nil
}

// Set sets key to value until it is deleted.
func (s Store) Set(key string, value []byte) error {
	return s.set(key, value, wit.None[uint64]())
}

// SetString sets key to a string value until it is deleted.
func (s Store) SetString(key, value string) error {
	return s.set(key, []byte(value), wit.None[uint64]())
}

// SetWithTTL sets key to value for ttl (1 ms to a year), after which it disappears.
func (s Store) SetWithTTL(key string, value []byte, ttl time.Duration) error {
	return s.set(key, value, wit.Some(uint64(ttl.Milliseconds())))
}

// Delete removes key; a key that is not set is no error.
func (Store) Delete(key string) error {
	defer release(hold())
	r := kvraw.Delete(key)
	if r.IsErr() {
		return fromKvError(r.Err())
	}
	return nil
}

// Increment adds delta to the integer at key (a missing key counts as 0) atomically, across
// every instance, and returns the new value.
func (Store) Increment(key string, delta int64) (int64, error) {
	defer release(hold())
	r := kvraw.Increment(key, delta)
	if r.IsErr() {
		return 0, fromKvError(r.Err())
	}
	return r.Ok(), nil
}

// ListKeys returns one page of the keys with prefix, sorted, after after ("" for the first
// page), at most limit (1..=1000). An empty page means the end.
func (Store) ListKeys(prefix, after string, limit uint32) ([]string, error) {
	defer release(hold())
	r := kvraw.ListKeys(prefix, cursor(after), limit)
	if r.IsErr() {
		return nil, fromKvError(r.Err())
	}
	return cloneStrings(r.Ok()), nil
}

// Keys walks every key with prefix, sorted, a page at a time (options as for Clients).
func (s Store) Keys(prefix string, opts ...PageOption) iter.Seq2[string, error] {
	return pages(func(a string, n uint32) ([]string, error) { return s.ListKeys(prefix, a, n) }, itself, opts)
}
