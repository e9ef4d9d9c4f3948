// Package function is the viewer function for the OpenFaaS golang-http
// template. The logic lives in the shared packages; this file only adapts.
package function

import (
	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/faas"
)

// viewer is wired from the environment when the function starts; an invalid
// configuration stops it with a message naming the variable.
var viewer = app.Must("viewer")

// Handle is a cron tick (POST: print the new alerts, answer {"printed": n})
// or a GET of the recent alerts (JSON, or HTML for a browser).
func Handle(req handler.Request) (handler.Response, error) {
	return faas.Serve(viewer.Handler, req)
}
