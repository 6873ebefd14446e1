package switchboard

// Outbound HTTP through wasi:http/outgoing-handler. The host sends a request only if its
// scheme, host and port are in the app's allowed_outbound_hosts (else an *HTTPError of kind
// Denied), and bounds it by the app's outbound_timeout_ms (else kind HTTPTimeout). Waiting
// for the network does not count against the event's CPU deadline.
//
// The response body is read in chunks of 64 KiB, each copied out of the argument arena and
// its space given back at once, so a body of any size stays within the arena.

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	handler "switchboard.dev/sdk/internal/bindings/imports/wasi_http_outgoing_handler"
	h "switchboard.dev/sdk/internal/bindings/imports/wasi_http_types"
	streams "switchboard.dev/sdk/internal/bindings/imports/wasi_io_streams"
	wit "switchboard.dev/sdk/internal/wit/types"
)

// The kinds of an outbound request's *Error (besides ErrTimeout).
const (
	ErrDenied     ErrorKind = "denied"      // not in the app's allowed_outbound_hosts
	ErrHTTP       ErrorKind = "http"        // the request failed
	ErrInvalidURL ErrorKind = "invalid-url" // not http(s)://host[:port][/path]
)

// Request is an outbound HTTP request; send it with Do.
type Request struct {
	Method  string
	URL     string
	Headers map[string]string
	Body    []byte
	// Timeout, if set and shorter than the app's outbound_timeout_ms, bounds the request.
	Timeout time.Duration
}

// Response is a whole response: status, headers (names in lowercase) and body.
type Response struct {
	Status  uint16
	Headers [][2]string
	Body    []byte
}

// Header returns the first value of header name (any case).
func (r *Response) Header(name string) (string, bool) {
	for _, kv := range r.Headers {
		if strings.EqualFold(kv[0], name) {
			return kv[1], true
		}
	}
	return "", false
}

// Text returns the body as a string.
func (r *Response) Text() string { return string(r.Body) }

func httpErr(kind ErrorKind, detail string) error { return &Error{kind, detail} }

func fromCode(code h.ErrorCode) error {
	switch code.Tag() {
	case h.ErrorCode_HttpRequestDenied:
		return httpErr(ErrDenied, "the destination is not in this app's allowed_outbound_hosts")
	case h.ErrorCode_ConnectionTimeout, h.ErrorCode_ConnectionReadTimeout,
		h.ErrorCode_ConnectionWriteTimeout, h.ErrorCode_DnsTimeout:
		return httpErr(ErrTimeout, fmt.Sprintf("error code %d", code.Tag()))
	}
	return httpErr(ErrHTTP, fmt.Sprintf("error code %d", code.Tag()))
}

func fromStream(e streams.StreamError) error {
	if e.Tag() == streams.StreamError_Closed {
		return httpErr(ErrHTTP, "the connection closed early")
	}
	ioErr := e.LastOperationFailed()
	defer ioErr.Drop()
	if code := h.HttpErrorCode(ioErr); code.IsSome() {
		return fromCode(code.Some())
	}
	return httpErr(ErrHTTP, strings.Clone(ioErr.ToDebugString()))
}

func splitURL(url string) (h.Scheme, string, string, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	var s h.Scheme
	switch strings.ToLower(scheme) {
	case "http":
		s = h.MakeSchemeHttp()
	case "https":
		s = h.MakeSchemeHttps()
	default:
		ok = false
	}
	cut := strings.IndexAny(rest, "/?")
	if cut < 0 {
		cut = len(rest)
	}
	authority, path := rest[:cut], rest[cut:]
	if !ok || authority == "" {
		return s, "", "", httpErr(ErrInvalidURL, fmt.Sprintf("%q is not http(s)://host[:port][/path]", url))
	}
	if path == "" {
		path = "/"
	}
	return s, authority, path, nil
}

func method(name string) h.Method {
	switch strings.ToUpper(name) {
	case "", "GET":
		return h.MakeMethodGet()
	case "HEAD":
		return h.MakeMethodHead()
	case "POST":
		return h.MakeMethodPost()
	case "PUT":
		return h.MakeMethodPut()
	case "DELETE":
		return h.MakeMethodDelete()
	case "OPTIONS":
		return h.MakeMethodOptions()
	case "PATCH":
		return h.MakeMethodPatch()
	}
	return h.MakeMethodOther(strings.ToUpper(name))
}

// Do sends the request and reads the whole response.
func (r Request) Do() (*Response, error) {
	defer release(hold())
	scheme, authority, path, err := splitURL(r.URL)
	if err != nil {
		return nil, err
	}
	entries := make([]wit.Tuple2[string, []uint8], 0, len(r.Headers))
	for k, v := range r.Headers {
		entries = append(entries, wit.Tuple2[string, []uint8]{F0: strings.ToLower(k), F1: []byte(v)})
	}
	fields := h.FieldsFromList(entries)
	if fields.IsErr() {
		return nil, httpErr(ErrHTTP, "invalid header")
	}
	request := h.MakeOutgoingRequest(fields.Ok())
	request.SetMethod(method(r.Method))
	request.SetScheme(wit.Some(scheme))
	request.SetAuthority(wit.Some(authority))
	request.SetPathWithQuery(wit.Some(path))
	options := wit.None[*h.RequestOptions]()
	if r.Timeout > 0 {
		o := h.MakeRequestOptions()
		ns := uint64(r.Timeout.Nanoseconds())
		// A refusal only means the host ignores that setting; its own bound holds.
		o.SetConnectTimeout(wit.Some(ns))
		o.SetFirstByteTimeout(wit.Some(ns))
		o.SetBetweenBytesTimeout(wit.Some(ns))
		options = wit.Some(o)
	}
	body := request.Body()
	if body.IsErr() {
		return nil, httpErr(ErrHTTP, "the request body was taken")
	}
	outgoing := body.Ok()
	// The request goes first and the body after: the host buffers little of a body.
	pending := handler.Handle(request, options)
	if pending.IsErr() {
		return nil, fromCode(pending.Err())
	}
	future := pending.Ok()
	defer future.Drop()
	if err := writeBody(outgoing, r.Body); err != nil {
		return nil, err
	}
	ready := future.Subscribe()
	ready.Block()
	ready.Drop()
	got := future.Get()
	if got.IsNone() || got.Some().IsErr() {
		return nil, httpErr(ErrHTTP, "the response was not ready")
	}
	outcome := got.Some().Ok()
	if outcome.IsErr() {
		return nil, fromCode(outcome.Err())
	}
	response := outcome.Ok()
	defer response.Drop()
	result := &Response{Status: response.Status()}
	headers := response.Headers()
	for _, kv := range headers.Entries() {
		result.Headers = append(result.Headers, [2]string{strings.Clone(kv.F0), string(kv.F1)})
	}
	headers.Drop()
	incoming := response.Consume()
	if incoming.IsErr() {
		return nil, httpErr(ErrHTTP, "the response body was taken")
	}
	result.Body, err = readBody(incoming.Ok())
	return result, err
}

func writeBody(body *h.OutgoingBody, data []byte) error {
	stream := body.Write()
	if stream.IsErr() {
		return httpErr(ErrHTTP, "the request body stream was taken")
	}
	out := stream.Ok()
	for len(data) > 0 {
		n := min(len(data), 4096)
		if r := out.BlockingWriteAndFlush(data[:n]); r.IsErr() {
			out.Drop()
			return fromStream(r.Err())
		}
		data = data[n:]
	}
	out.Drop()
	if r := h.OutgoingBodyFinish(body, wit.None[*h.Fields]()); r.IsErr() {
		return fromCode(r.Err())
	}
	return nil
}

func readBody(body *h.IncomingBody) ([]byte, error) {
	stream := body.Stream()
	if stream.IsErr() {
		body.Drop()
		return nil, httpErr(ErrHTTP, "the response body stream was taken")
	}
	in := stream.Ok()
	var buf bytes.Buffer
	for {
		done, err := readChunk(in, &buf)
		if done {
			in.Drop()
			h.IncomingBodyFinish(body).Drop()
			return buf.Bytes(), err
		}
	}
}

// readChunk appends the next chunk of in to buf and gives its arena space back; done at the
// end of the body (err nil) or on an error.
func readChunk(in *streams.InputStream, buf *bytes.Buffer) (bool, error) {
	defer release(hold())
	r := in.BlockingRead(64 << 10)
	if r.IsErr() {
		if e := r.Err(); e.Tag() != streams.StreamError_Closed {
			return true, fromStream(e)
		}
		return true, nil
	}
	buf.Write(r.Ok())
	return false, nil
}

// Get sends GET url.
func Get(url string) (*Response, error) { return Request{Method: "GET", URL: url}.Do() }

// Post sends POST url with body.
func Post(url string, body []byte) (*Response, error) {
	return Request{Method: "POST", URL: url, Body: body}.Do()
}
