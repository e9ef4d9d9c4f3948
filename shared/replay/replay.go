// Package replay runs a file of transfers through the detect code path (the
// same decoding, the same Redis script) and writes each alert as one
// structured-mode CloudEvent JSON line.
package replay

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/embedded"
	"github.com/fintrans/fintrans/shared/event"
	"github.com/fintrans/fintrans/shared/sink"
)

// Summary counts what a replay did.
type Summary struct {
	Lines, Counted, Duplicate, Late, Invalid, Alerts int
}

func (s Summary) String() string {
	return fmt.Sprintf("replayed %d lines: %d counted, %d duplicate, %d late, %d invalid; %d alerts",
		s.Lines, s.Counted, s.Duplicate, s.Late, s.Invalid, s.Alerts)
}

// Batch is how many lines `fintrans replay` hands detect at a time.
const Batch = 500

// FromConfig is `fintrans replay`: it runs the lines of in (named name)
// through detect on the Redis of cfg, or on the embedded Redis of
// cfg.EmbeddedRedis, started here and stopped at the end, when REDIS_URL is
// unset.
func FromConfig(ctx context.Context, cfg config.Config, log *slog.Logger, in io.Reader, name string, out, errw io.Writer) (Summary, error) {
	stop, err := embedded.ForConfig(ctx, &cfg, log)
	if err != nil {
		return Summary{}, err
	}
	defer stop()
	st, rdb, err := app.Store(ctx, cfg, log)
	if err != nil {
		return Summary{}, err
	}
	defer rdb.Close()
	d := &detect.Detector{Store: st, Sink: sink.Func(nil), Log: log, Redis: rdb, MaxClockSkew: cfg.MaxClockSkew}
	return Run(ctx, d, in, "file://"+name, out, errw, Batch)
}

// Run reads transfers from r (seed lines "time;from;to;amount", or one
// CloudEvent JSON object per line), applies them in batches through d with
// alerts written to out, and reports invalid lines to errw. source names the
// input; a seed line gets the id "line-<n>" so a second replay of the same
// file counts nothing twice.
func Run(ctx context.Context, d *detect.Detector, r io.Reader, source string, out, errw io.Writer, batch int) (Summary, error) {
	var sum Summary
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	d2 := *d
	d2.Sink = sink.Func(func(ctx context.Context, events []ce.Event) error {
		for i := range events {
			if err := enc.Encode(&events[i]); err != nil {
				return err
			}
		}
		return nil
	})
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	var items []event.Item
	flush := func() error {
		if len(items) == 0 {
			return nil
		}
		p, err := d2.Process(ctx, items)
		if err != nil {
			return err
		}
		for _, res := range p.Results {
			switch res.Status {
			case detect.Counted:
				sum.Counted++
			case detect.Duplicate:
				sum.Duplicate++
			case detect.Late:
				sum.Late++
				fmt.Fprintf(errw, "%s: %s\n", res.Ref, res.Reason)
			case detect.Invalid:
				sum.Invalid++
				fmt.Fprintf(errw, "%s: invalid: %s\n", res.Ref, res.Reason)
			}
		}
		sum.Alerts += len(p.Alerts)
		items = items[:0]
		return nil
	}
	n := 0
	for sc.Scan() {
		n++
		line := []byte(event.TrimLine(sc.Text()))
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		sum.Lines++
		items = append(items, decodeLine(line, source, n))
		if len(items) >= batch {
			if err := flush(); err != nil {
				return sum, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return sum, err
	}
	return sum, flush()
}

func decodeLine(line []byte, source string, n int) event.Item {
	ref := "line " + strconv.Itoa(n)
	if line[0] == '{' {
		var e ce.Event
		if err := json.Unmarshal(line, &e); err != nil {
			return event.Item{Ref: ref, Err: &event.InputError{Reason: "not a CloudEvent: " + strings.TrimSpace(err.Error())}}
		}
		it := event.FromCloudEvent(e)
		it.Ref = ref
		return it
	}
	t, err := event.ParseLine(string(line))
	if err == nil {
		t.Source, t.ID = source, "line-"+strconv.Itoa(n)
		err = t.Validate()
	}
	return event.Item{Ref: ref, Transfer: t, Err: err}
}
