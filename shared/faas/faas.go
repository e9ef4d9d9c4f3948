// Package faas adapts a function's request -> answer core (httpfn.Func) to
// the OpenFaaS golang-http template's signature, so each function's Handle
// is one line and the same core serves OpenFaaS, Knative and the local
// binary.
package faas

import (
	"context"
	"net/http"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/fintrans/fintrans/shared/httpfn"
)

// Serve runs f for one OpenFaaS request and returns its answer.
func Serve(f httpfn.Func, req handler.Request) (handler.Response, error) {
	ctx := req.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	method := req.Method
	if method == "" {
		method = http.MethodPost
	}
	res := f.Do(ctx, httpfn.Request{Method: method, Header: req.Header, Query: req.QueryString, Body: req.Body})
	return handler.Response{StatusCode: res.Status, Header: res.Header, Body: res.Body}, nil
}
