// Package function is the generator function for the OpenFaaS golang-http
// template. The logic lives in the shared packages; this file only adapts.
package function

import (
	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/faas"
)

// generator is wired from the environment when the function starts; an invalid
// configuration stops it with a message naming the variable.
var generator = app.Must("generator")

// Handle is a cron tick (the cron-connector's empty POST): it makes one batch
// of transfers and answers {"produced": n, "episodes": k, "topic"|"sink": ...}.
func Handle(req handler.Request) (handler.Response, error) {
	return faas.Serve(generator.Handler, req)
}
