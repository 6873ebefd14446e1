package switchboard

import (
	"errors"
	"strings"

	raw "switchboard.dev/sdk/internal/bindings/imports/switchboard_plugin_types"
	wit "switchboard.dev/sdk/internal/wit/types"
)

// ErrorKind names the case of an Error in kebab-case, as in the WIT ("invalid-client-id").
// Each kind is also an error value, the sentinel errors.Is compares against:
//
//	if errors.Is(err, sb.ErrInvalidClientID) { … }   // also through fmt.Errorf("…: %w", err)
type ErrorKind string

// Error returns the kind, so a kind is itself an error (the sentinel of its *Error values).
func (k ErrorKind) Error() string { return string(k) }

// The kinds of the API's errors (the WIT variant error).
const (
	ErrInvalidClientID ErrorKind = "invalid-client-id" // not 20 lowercase hex characters
	ErrInvalidName     ErrorKind = "invalid-name"      // a uid or group empty or over 256 bytes
	ErrTooLarge        ErrorKind = "too-large"         // a message, session or value over its limit
	ErrInvalidArgument ErrorKind = "invalid-argument"  // another argument out of range (a limit of 0)
	ErrTimeout         ErrorKind = "timeout"           // a cluster query or HTTP request ran out of time
)

// Error is an error the host returned: its Kind (the sentinel it wraps) and the host's
// Detail. Match it with errors.Is(err, sb.ErrTooLarge), or errors.As(err, &e) for the detail.
type Error struct {
	Kind   ErrorKind
	Detail string
}

// Error is "KIND: DETAIL".
func (e *Error) Error() string {
	if e.Detail == "" {
		return string(e.Kind)
	}
	return string(e.Kind) + ": " + e.Detail
}

// Unwrap returns the kind, which makes errors.Is(err, sb.ErrX) work however deeply err wraps e.
func (e *Error) Unwrap() error { return e.Kind }

// NewError builds an *Error of kind, for a plugin's own code to return (a handler that lets
// it escape has it logged like one of the host's).
func NewError(kind ErrorKind, detail string) error { return &Error{Kind: kind, Detail: detail} }

// kindAndDetail is what the error policy logs of err: the kind of the sentinel it wraps
// ("error" if none) and its detail (the host's detail for a bare *Error, else err's text,
// so a wrapper's context is kept).
func kindAndDetail(err error) (string, string) {
	var kind ErrorKind
	if !errors.As(err, &kind) {
		return "error", err.Error()
	}
	switch e := err.(type) {
	case *Error:
		return string(kind), e.Detail
	case ErrorKind:
		return string(kind), ""
	}
	return string(kind), err.Error()
}

func fromRawError(e raw.Error) error {
	switch e.Tag() {
	case raw.Error_InvalidClientId:
		return &Error{ErrInvalidClientID, strings.Clone(e.InvalidClientId())}
	case raw.Error_InvalidName:
		return &Error{ErrInvalidName, strings.Clone(e.InvalidName())}
	case raw.Error_TooLarge:
		return &Error{ErrTooLarge, strings.Clone(e.TooLarge())}
	case raw.Error_InvalidArgument:
		return &Error{ErrInvalidArgument, strings.Clone(e.InvalidArgument())}
	default:
		return &Error{ErrTimeout, strings.Clone(e.Timeout())}
	}
}

func unit(r wit.Result[wit.Unit, raw.Error]) error {
	if r.IsErr() {
		return fromRawError(r.Err())
	}
	return nil
}
