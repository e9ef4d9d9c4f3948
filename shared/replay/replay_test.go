package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/replay"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
)

const input = `# the seed's format, and one CloudEvent per line
2017-07-23T01:06:47Z;66;26;7810
Sunday, 23-Jul-17 01:07:47 UTC;66;26;2190.01
not a transfer
{"specversion":"1.0","type":"io.fintrans.transaction","id":"ce-1","source":"/s","time":"2017-07-23T01:08:00Z","data":{"from":"1","to":"2","amount":10000.01}}
2017-07-23T00:00:00Z;66;26;5
`

func TestReplayPrintsAlertsAsCloudEvents(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	st, err := window.New(rdb, window.Config{Threshold: 10000_00, Size: 10 * time.Minute, Slide: 2 * time.Minute,
		Lateness: time.Hour, MaxTransactions: 10, TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	d := &detect.Detector{Store: st}
	var out, errs bytes.Buffer
	sum, err := replay.Run(context.Background(), d, strings.NewReader(input), "file://t", &out, &errs, 2)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Lines != 5 || sum.Counted != 3 || sum.Invalid != 1 || sum.Late != 1 || sum.Alerts != 10 {
		t.Fatalf("summary %s", sum)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d alert lines", len(lines))
	}
	for _, l := range lines {
		var e struct {
			Type, ID string
			Data     transfer.Alert
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Type != cloudevent.FraudType || e.ID == "" || e.Data.Value.N <= e.Data.Threshold.N || e.Data.Rule != "structuring" {
			t.Fatalf("not a structured fraud CloudEvent: %s (%v)", l, err)
		}
	}
	if !strings.Contains(errs.String(), "line 4: invalid") || !strings.Contains(errs.String(), "line 6: late") {
		t.Fatalf("refusals not reported with their line: %q", errs.String())
	}

	// The same file again: every line a duplicate; the ones that fired fire
	// again with the same ids (a consumer dedupes by id).
	var again bytes.Buffer
	sum, err = replay.Run(context.Background(), d, strings.NewReader(input), "file://t", &again, &errs, 100)
	if err != nil || sum.Counted != 0 || sum.Duplicate != 3 {
		t.Fatalf("second replay: %s %v", sum, err)
	}
	if again.String() != out.String() {
		t.Fatal("a second replay must repeat the same alerts, not new ones")
	}
}
