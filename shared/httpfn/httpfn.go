// Package httpfn is the request -> answer core every function shares. A
// function is a Func: Serve takes a Request (method, header, query and the
// body, read up to MaxBody) and returns a Response. ServeHTTP runs it under
// net/http (Knative, the local run, the tests) and the faas package runs it
// for the OpenFaaS template; nothing in between records or replays an
// answer.
package httpfn

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
)

// Request is what a function reads of an HTTP request.
type Request struct {
	Method string
	Header http.Header
	Query  string // the raw query, without '?'
	Body   []byte
	// BodyErr is why the body could not be read whole: an
	// *http.MaxBytesError when it is larger than the Func's MaxBody.
	BodyErr error
}

// Response is a function's answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Func is a function's core and the most of a body it reads.
type Func struct {
	Serve   func(ctx context.Context, r Request) Response
	MaxBody int64
	// Stream, when set, may take a request whole on a net/http server, for
	// an answer written as it happens (the viewer's event stream); it
	// reports whether it did. Where answers are buffered (the OpenFaaS
	// template) Serve answers the same request at once instead.
	Stream func(w http.ResponseWriter, r *http.Request) bool
}

// ServeHTTP reads the body (at most MaxBody bytes: beyond, BodyErr is an
// *http.MaxBytesError and the connection is closed after the answer), runs
// Serve and writes its answer; or lets Stream take the request.
func (f Func) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.Stream != nil && f.Stream(w, r) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, f.MaxBody))
	res := f.Serve(r.Context(), Request{Method: r.Method, Header: r.Header, Query: r.URL.RawQuery, Body: body, BodyErr: err})
	Write(w, res)
}

// Do runs Serve for a request whose body was read by someone else (the
// OpenFaaS template), holding it to MaxBody as ServeHTTP does.
func (f Func) Do(ctx context.Context, r Request) Response {
	if r.BodyErr == nil && int64(len(r.Body)) > f.MaxBody {
		r.Body, r.BodyErr = r.Body[:f.MaxBody], &http.MaxBytesError{Limit: f.MaxBody}
	}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	return f.Serve(ctx, r)
}

// Write writes an answer to w.
func Write(w http.ResponseWriter, res Response) {
	for k, vs := range res.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(res.Status)
	_, _ = w.Write(res.Body)
}

// JSON is an answer of v as JSON (HTML-escaped, one line).
func JSON(status int, v any) Response {
	return JSONWith(status, nil, v)
}

// JSONWith is JSON with more headers (Allow, Retry-After, WWW-Authenticate).
func JSONWith(status int, h http.Header, v any) Response {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	return Response{Status: status, Header: h, Body: b.Bytes()}
}

// Error is a one-line JSON reason {"error": reason}.
func Error(status int, reason string) Response {
	return JSON(status, map[string]string{"error": reason})
}

// ErrorWith is Error with more headers.
func ErrorWith(status int, h http.Header, reason string) Response {
	return JSONWith(status, h, map[string]string{"error": reason})
}
