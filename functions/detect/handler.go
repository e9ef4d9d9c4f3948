// Package function is the detect function for the OpenFaaS golang-http
// template. The logic lives in the shared packages; this file only adapts.
package function

import (
	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/faas"
)

// detect is wired from the environment when the function starts; an invalid
// configuration stops it with a message naming the variable.
var detect = app.Must("detect")

// Handle takes a CloudEvent (binary, structured or batch), seed lines, or a
// kafka-connector request, and answers what it did.
func Handle(req handler.Request) (handler.Response, error) {
	return faas.Serve(detect.Handler, req)
}
