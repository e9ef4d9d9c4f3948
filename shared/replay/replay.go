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
	"strconv"
	"strings"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/codec/seedline"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/transfer"
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
	var items []transfer.Item
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
			case transfer.Counted:
				sum.Counted++
			case transfer.Duplicate:
				sum.Duplicate++
			case transfer.Late:
				sum.Late++
				fmt.Fprintf(errw, "%s: %s\n", res.Ref, res.Reason)
			case transfer.Invalid:
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
		line := []byte(seedline.Trim(sc.Text()))
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

func decodeLine(line []byte, source string, n int) transfer.Item {
	ref := "line " + strconv.Itoa(n)
	if line[0] == '{' {
		var e ce.Event
		if err := json.Unmarshal(line, &e); err != nil {
			return transfer.Item{Ref: ref, Err: &transfer.InputError{Reason: "not a CloudEvent: " + strings.TrimSpace(err.Error())}}
		}
		it := cloudevent.FromEvent(e)
		it.Ref = ref
		return it
	}
	t, err := seedline.Parse(string(line))
	if err == nil {
		t.Source, t.ID = source, "line-"+strconv.Itoa(n)
		err = t.Validate()
	}
	return transfer.Item{Ref: ref, Transfer: t, Err: err}
}
