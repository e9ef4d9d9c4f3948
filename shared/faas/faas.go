// Package faas adapts a net/http handler to the OpenFaaS golang-http
// template's signature, so each function's Handle is one line and the same
// handler serves OpenFaaS, Knative and the local binary.
package faas

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"

	handler "github.com/openfaas/templates-sdk/go-http"
)

// Serve runs h for one OpenFaaS request and returns its answer.
func Serve(h http.Handler, req handler.Request) (handler.Response, error) {
	ctx := req.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	target := "/"
	if req.QueryString != "" {
		target += "?" + req.QueryString
	}
	method := req.Method
	if method == "" {
		method = http.MethodPost
	}
	r, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(req.Body))
	if err != nil {
		return handler.Response{StatusCode: http.StatusBadRequest, Body: []byte(`{"error":"malformed request"}`)}, nil
	}
	if req.Header != nil {
		r.Header = req.Header.Clone()
	}
	r.Host = req.Host
	r.URL = &url.URL{Path: "/", RawQuery: req.QueryString}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	res := rec.Result()
	return handler.Response{StatusCode: res.StatusCode, Header: res.Header, Body: rec.Body.Bytes()}, nil
}
