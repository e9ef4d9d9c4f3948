// Package detecttest holds what the tests of alert delivery share: the
// worst account ids SPEC allows, run through a Detector until they alert, and
// the check that a transport delivered those alerts exactly.
//
// Test tooling, not product: no function image and no serving path of the
// binary (serve, consume) links it (go list -deps proves it; see README).
package detecttest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/codec/httpreq"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/transfer/transfertest"
	"github.com/fintrans/fintrans/shared/window"
)

// Clock is the Detector's clock in SendWorstAlerts: a few minutes after the
// transfers it sends.
var Clock = time.Date(2017, 7, 23, 1, 10, 0, 0, time.UTC)

// WorstPairs pairs each of the worst allowed account ids with the next.
func WorstPairs() [][2]string {
	ids := transfertest.WorstAccountIDs()
	var out [][2]string
	for i, id := range ids {
		out = append(out, [2]string{id, ids[(i+1)%len(ids)]})
	}
	return out
}

// SendWorstAlerts runs a crossing pair of transfers for each worst pair through a
// Detector whose sink is s, and returns the alerts Process reported.
func SendWorstAlerts(t *testing.T, s sink.Sink) []transfer.Alert {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	st, err := window.New(rdb, window.Config{Threshold: 10000_00, Size: 10 * time.Minute, Slide: 2 * time.Minute,
		Lateness: time.Hour, MaxTransactions: 10, TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	d := &detect.Detector{Store: st, Sink: s, Now: func() time.Time { return Clock }}
	var items []transfer.Item
	for i, p := range WorstPairs() {
		for j, at := range []string{"2017-07-23T01:06:47Z", "2017-07-23T01:07:47Z"} {
			body, _ := json.Marshal(map[string]any{"from": p[0], "to": p[1], "amount": 6000})
			h := http.Header{}
			h.Set("Content-Type", "application/json")
			h.Set("Ce-Specversion", "1.0")
			h.Set("Ce-Type", cloudevent.TransactionType)
			h.Set("Ce-Id", fmt.Sprintf("w%d-%d", i, j))
			h.Set("Ce-Source", "/test")
			h.Set("Ce-Time", at)
			req, err := new(httpreq.Decoder).Decode(h, body, 10)
			if err != nil || req.Items[0].Transfer.From != p[0] || req.Items[0].Transfer.To != p[1] {
				t.Fatalf("%q->%q: %v %+v", p[0], p[1], err, req)
			}
			items = append(items, req.Items...)
		}
	}
	p, err := d.Process(context.Background(), items)
	if err != nil {
		t.Fatalf("the alerts of the worst ids were not delivered: %v", err)
	}
	if want := 5 * len(WorstPairs()); len(p.Alerts) != want {
		t.Fatalf("%d alerts, want %d", len(p.Alerts), want)
	}
	return p.Alerts
}

// CheckDelivered holds what a transport delivered to the alerts sent: the
// same ids, and for each the subject, partitionkey and data naming the pair
// exactly.
func CheckDelivered(t *testing.T, sent []transfer.Alert, got []ce.Event) {
	t.Helper()
	want := map[string]transfer.Alert{}
	for _, a := range sent {
		want[a.ID()] = a
	}
	if len(got) != len(want) {
		t.Fatalf("%d alerts delivered, want %d", len(got), len(want))
	}
	for _, e := range got {
		a, ok := want[e.ID()]
		if !ok {
			t.Fatalf("unknown alert id %q delivered", e.ID())
		}
		pk, _ := e.Extensions()[cloudevent.PartitionKey].(string)
		if e.Subject() != transfer.PairKey(a.From, a.To) || pk != transfer.PairKey(a.From, a.To) {
			t.Errorf("alert %s: subject %q partitionkey %q, want %q", e.ID(), e.Subject(), pk, transfer.PairKey(a.From, a.To))
		}
		back, err := cloudevent.ToAlert(e)
		if err != nil || back.From != a.From || back.To != a.To || back.ID() != e.ID() {
			t.Errorf("alert %s read back as %q->%q: %v", e.ID(), back.From, back.To, err)
		}
	}
}
