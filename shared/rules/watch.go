package rules

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fintrans/fintrans/shared/metrics"
)

// Load reads the set from path (RULES_FILE); errors name it.
func Load(path string, d Defaults) (Set, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Set{}, fmt.Errorf("RULES_FILE %s: %w", path, err)
	}
	s, err := Parse(b, d)
	if err != nil {
		return Set{}, fmt.Errorf("RULES_FILE %s: %w", path, err)
	}
	s.Source = path
	return s, nil
}

// Watcher keeps the set in force up to date with RULES_FILE. It reads the
// file every Interval and compares its bytes, so it sees every way a file is
// replaced: written in place, renamed over, or swapped behind a symlink the
// way Kubernetes updates a mounted ConfigMap or Secret (an OpenFaaS secret
// too). A change that does not parse is refused: the previous set stays in
// force, the error is logged once per distinct content and counted in
// fintrans_rules_reload_errors_total.
type Watcher struct {
	path     string
	defaults Defaults
	log      *slog.Logger

	current atomic.Pointer[Set]
	mu      sync.Mutex
	seen    []byte // the bytes last read (good or bad)
	subs    []func(Set)
}

// NewWatcher loads path once; an error here stops the process (SPEC: a bad
// file at start is refused).
func NewWatcher(path string, d Defaults, log *slog.Logger) (*Watcher, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("RULES_FILE %s: %w", path, err)
	}
	s, err := Parse(b, d)
	if err != nil {
		return nil, fmt.Errorf("RULES_FILE %s: %w", path, err)
	}
	s.Source = path
	w := &Watcher{path: path, defaults: d, log: log, seen: b}
	w.set(s)
	log.Info("rules loaded", "RULES_FILE", path, "version", s.Version, "rules", describe(s))
	return w, nil
}

// Current is the set in force.
func (w *Watcher) Current() Set { return *w.current.Load() }

// OnChange registers f to be called with each new set in force.
func (w *Watcher) OnChange(f func(Set)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.subs = append(w.subs, f)
}

// Run checks the file every interval until ctx ends.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Check()
		}
	}
}

// Check reads the file once and takes a change; it reports whether the set
// in force changed.
func (w *Watcher) Check() bool {
	if w.path == "" {
		return false // Static
	}
	b, err := os.ReadFile(w.path)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		// A ConfigMap swap leaves no window without the file; a file that
		// is gone for good keeps the rules in force, once logged.
		if w.seen != nil {
			w.seen = nil
			metrics.RulesReloadErrors.Inc()
			w.log.Error("rules not reloaded: the previous rules stay in force", "RULES_FILE", w.path, "err", err)
		}
		return false
	}
	if w.seen != nil && bytes.Equal(b, w.seen) {
		return false
	}
	w.seen = b
	s, err := Parse(b, w.defaults)
	if err != nil {
		metrics.RulesReloadErrors.Inc()
		w.log.Error("rules not reloaded: the previous rules stay in force", "RULES_FILE", w.path,
			"version", w.current.Load().Version, "err", err)
		return false
	}
	s.Source = w.path
	if s.Version == w.current.Load().Version {
		return false // the same bytes as the set in force: the file came back
	}
	old := w.current.Load()
	// The subscribers (the window store) take the set first: once the
	// metric and Current name it, it is what judges transfers.
	for _, f := range w.subs {
		f(s)
	}
	w.set(s)
	w.log.Info("rules reloaded", "RULES_FILE", w.path, "version", s.Version, "previous", old.Version, "rules", describe(s))
	return true
}

func (w *Watcher) set(s Set) {
	if old := w.current.Load(); old != nil {
		metrics.RulesInfo.DeleteLabelValues(old.Version, old.Source)
	}
	w.current.Store(&s)
	metrics.RulesInfo.WithLabelValues(s.Version, s.Source).Set(1)
	metrics.RulesEnabled.Set(float64(len(s.Enabled())))
}

// Static is the set in force when there is no RULES_FILE: it never changes.
func Static(s Set) *Watcher {
	w := &Watcher{}
	w.set(s)
	return w
}

// Describe lists the set's rules for a log line.
func (s Set) Describe() []string { return describe(s) }

// describe lists a set's rules for a log line.
func describe(s Set) []string {
	out := make([]string, 0, len(s.Rules))
	for _, r := range s.Rules {
		state := ""
		if !r.Enabled {
			state = " (disabled)"
		}
		out = append(out, fmt.Sprintf("%s: %s by %s > %s in %s/%s%s", r.ID, r.Aggregate, r.GroupBy, r.ThresholdText(), r.Window, r.Slide, state))
	}
	return out
}
