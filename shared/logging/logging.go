// Package logging builds the process's log/slog logger from LOG_FORMAT and
// LOG_LEVEL.
package logging

import (
	"io"
	"log/slog"
	"os"

	"github.com/fintrans/fintrans/shared/config"
)

// New returns a logger writing to stderr (text, or JSON with LOG_FORMAT=json).
func New(cfg config.Config) *slog.Logger { return NewTo(os.Stderr, cfg) }

// NewTo writes to w.
func NewTo(w io.Writer, cfg config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
