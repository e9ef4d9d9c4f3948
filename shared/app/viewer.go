package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/viewer"
)

// ViewerFunction is the wired viewer function together with the Viewer
// behind its handler, for the local runner, which calls Viewer.Drain from
// its own cron instead of posting to the handler. Close (from the embedded
// *Function) leaves the consumer group.
type ViewerFunction struct {
	*Function
	Viewer *viewer.Viewer
}

// NewViewerFrom wires the viewer: it needs KAFKA_BROKERS, reads FRAUD_TOPIC
// in the group VIEWER_GROUP and prints alerts to out (nil: os.Stdout). It
// does not connect before the first Drain.
func NewViewerFrom(ctx context.Context, cfg config.Config, log *slog.Logger, out io.Writer) (*ViewerFunction, error) {
	if len(cfg.KafkaBrokers) == 0 {
		return nil, errors.New("viewer needs KAFKA_BROKERS (it reads the fraud topic " + cfg.FraudTopic + ")")
	}
	kc, err := kafka.Config("viewer", cfg.KafkaVersion)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = os.Stdout
	}
	v := viewer.New(cfg, cfg.KafkaBrokers, kc, out, log)
	// The token itself is never logged: only whether one protects the alerts.
	log.Info("viewer ready", "topic", cfg.FraudTopic, "group", cfg.ViewerGroup, "format", cfg.LogFormat,
		"alerts_need_token", cfg.ViewerToken != "")
	f := &Function{
		Name:    "viewer",
		Handler: &viewer.Handler{Viewer: v, Token: cfg.ViewerToken},
		Ready:   v.Ready,
		closers: []func() error{v.Close},
	}
	return &ViewerFunction{Function: f, Viewer: v}, nil
}

func newViewer(ctx context.Context, cfg config.Config, log *slog.Logger) (*Function, error) {
	v, err := NewViewerFrom(ctx, cfg, log, nil)
	if err != nil {
		return nil, err
	}
	return v.Function, nil
}
