// Package detect is the detect function: decoded transfers go through the
// window store, the alerts they fire go to the sink, and only then is the
// work acknowledged. The same Detector serves HTTP (OpenFaaS, Knative, the
// local server), the Kafka consumer and the replay command.
package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/metrics"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
)

// Result is what happened to one input.
type Result struct {
	Ref    string          `json:"ref,omitempty"`
	Source string          `json:"source,omitempty"`
	ID     string          `json:"id,omitempty"`
	Status transfer.Status `json:"status"`
	Reason string          `json:"reason,omitempty"`
	Alerts []string        `json:"alerts,omitempty"` // ids of the alerts fired (or fired again)
}

// Applier applies transfers to the window store: a *window.Store, or a
// *window.Coalescer in front of one.
type Applier interface {
	Apply(ctx context.Context, ts []transfer.Transfer) ([]window.Outcome, error)
}

// Detector runs transfers through the store and the sink.
type Detector struct {
	Store Applier
	Sink  sink.Sink
	Log   *slog.Logger

	// MaxClockSkew is how far ahead of Now a transfer may be dated
	// (MAX_CLOCK_SKEW); one dated further is refused as invalid and changes
	// nothing, so no transfer from the future can make its pair's later
	// transfers late. Zero means DefaultMaxClockSkew.
	MaxClockSkew time.Duration
	Now          func() time.Time // the function's clock; nil: time.Now
}

// DefaultMaxClockSkew is MAX_CLOCK_SKEW's default.
const DefaultMaxClockSkew = 5 * time.Minute

// future is the reason a transfer dated too far ahead is refused, or "".
func (d *Detector) future(t transfer.Transfer, now time.Time) string {
	skew := d.MaxClockSkew
	if skew <= 0 {
		skew = DefaultMaxClockSkew
	}
	if !t.Time.After(now.Add(skew)) {
		return ""
	}
	return fmt.Sprintf("time %s is more than %s ahead of this function's clock (MAX_CLOCK_SKEW): a transfer cannot come from the future",
		t.Time.Format(time.RFC3339Nano), skew)
}

// FaultError is a server-side failure (Redis or the sink): retry later.
type FaultError struct {
	Component string // "redis" or "sink"
	Err       error
}

func (e *FaultError) Error() string { return e.Component + ": " + e.Err.Error() }
func (e *FaultError) Unwrap() error { return e.Err }

// Processed is the outcome of Process.
type Processed struct {
	Results []Result
	Alerts  []transfer.Alert
}

// Process applies every valid item and delivers the alerts. It returns a
// *FaultError if Redis or the sink failed: then nothing may be acknowledged
// (a redelivery is safe: transfers already counted are duplicates, and the
// ones that fired an alert fire it again).
func (d *Detector) Process(ctx context.Context, items []transfer.Item) (Processed, error) {
	a, err := d.Apply(ctx, items)
	if err != nil {
		return a.Processed, err
	}
	return a.Processed, d.Deliver(ctx, a)
}

// Applied is a batch whose transfers are in Redis and whose alerts are yet
// to be delivered (Deliver).
type Applied struct {
	Processed
	events []ce.Event
}

// Apply is Process's first half: it checks the items and applies the valid
// ones to the store. Its alerts are in the result, not yet delivered:
// nothing may be acknowledged before Deliver succeeds. A caller may apply
// the next batch while it delivers this one (a stream's batches are applied
// in order; their alerts follow).
func (d *Detector) Apply(ctx context.Context, items []transfer.Item) (Applied, error) {
	p := Processed{Results: make([]Result, len(items))}
	var valid []transfer.Transfer
	var at []int
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	nowT := now()
	for i, it := range items {
		r := Result{Ref: it.Ref, Source: it.Transfer.Source, ID: it.Transfer.ID}
		if it.Err == nil {
			if reason := d.future(it.Transfer, nowT); reason != "" {
				it.Err = &transfer.InputError{Reason: reason}
				d.logger().Warn("transfer from the future refused", "source", it.Transfer.Source, "id", it.Transfer.ID,
					"time", it.Transfer.Time, "pair", transfer.PairKey(it.Transfer.From, it.Transfer.To))
			}
		}
		if it.Err != nil {
			r.Status, r.Reason = transfer.Invalid, it.Err.Error()
			metrics.Transfers.WithLabelValues(transfer.Invalid.String()).Inc()
		} else {
			valid = append(valid, it.Transfer)
			at = append(at, i)
		}
		p.Results[i] = r
	}
	if len(valid) == 0 {
		return Applied{Processed: p}, nil
	}
	start := time.Now()
	outs, err := d.Store.Apply(ctx, valid)
	metrics.RedisSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		metrics.Errors.WithLabelValues("redis").Inc()
		var re *window.ReplicaError
		if errors.As(err, &re) {
			// On the primary, not yet on enough replicas: a failover now
			// could lose it, so it is not acknowledged (the redelivery is
			// exact).
			metrics.ReplicaShortfalls.Inc()
		}
		return Applied{Processed: p}, &FaultError{Component: "redis", Err: err}
	}
	var events []ce.Event
	var byStatus [4]int // counts by window.Status, added to the metric once a batch
	for k, o := range outs {
		r := &p.Results[at[k]]
		r.Status = o.Status
		if int(o.Status) < len(byStatus) {
			byStatus[o.Status]++
		}
		switch o.Status {
		case window.Late:
			metrics.Late.Inc()
			r.Reason = fmt.Sprintf("late: %s is more than the allowed lateness behind %s, the newest time of its group (pair %s) for rule %s",
				valid[k].Time.Format(time.RFC3339Nano), o.Newest.Format(time.RFC3339Nano), transfer.PairKey(valid[k].From, valid[k].To), strings.Join(o.LateFor, ", "))
			d.logger().Warn("late transfer refused", "source", valid[k].Source, "id", valid[k].ID,
				"time", valid[k].Time, "newest", o.Newest, "pair", transfer.PairKey(valid[k].From, valid[k].To), "rules", o.LateFor)
		case window.Duplicate:
			metrics.Duplicates.Inc()
		}
		for _, rule := range o.LateFor {
			metrics.RuleLate.WithLabelValues(rule).Inc()
		}
		if o.Status == window.Counted && len(o.LateFor) > 0 {
			// Counted by some rules, too late for the group of others.
			d.logger().Warn("transfer late for some rules", "source", valid[k].Source, "id", valid[k].ID,
				"time", valid[k].Time, "pair", transfer.PairKey(valid[k].From, valid[k].To), "rules", o.LateFor)
		}
		for _, a := range o.Alerts {
			r.Alerts = append(r.Alerts, a.ID())
			p.Alerts = append(p.Alerts, a)
			events = append(events, cloudevent.Alert(a))
		}
	}
	for st, n := range byStatus {
		if n > 0 {
			metrics.Transfers.WithLabelValues(window.Status(st).String()).Add(float64(n))
		}
	}
	return Applied{Processed: p, events: events}, nil
}

// Deliver is Process's second half: it sends an applied batch's alerts to
// the sink, and may be called again for the same batch after a fault (the
// alerts' ids do not change).
func (d *Detector) Deliver(ctx context.Context, a Applied) error {
	if len(a.events) == 0 {
		return nil
	}
	start := time.Now()
	err := d.Sink.Send(ctx, a.events)
	metrics.SinkSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		metrics.Errors.WithLabelValues("sink").Inc()
		return &FaultError{Component: "sink", Err: err}
	}
	for _, al := range a.Alerts {
		metrics.Alerts.WithLabelValues(al.Rule).Inc()
		d.logger().Debug("fraud alert", "id", al.ID(), "rule", al.Rule, "group", al.GroupKey(),
			"windowStart", al.WindowStart, "value", al.Value.String(), "total", al.Total.String(), "count", al.Count)
	}
	return nil
}

func (d *Detector) logger() *slog.Logger {
	if d.Log == nil {
		return slog.Default()
	}
	return d.Log
}

// IsFault reports whether err is a server-side fault.
func IsFault(err error) bool {
	var f *FaultError
	return errors.As(err, &f)
}
