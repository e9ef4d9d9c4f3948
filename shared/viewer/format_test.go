package viewer

import (
	"strings"
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/transfer"
)

func TestFormatShowsTheRule(t *testing.T) {
	start := time.Date(2017, 7, 23, 1, 0, 0, 0, time.UTC)
	a := transfer.Alert{Rule: "fan-in", GroupBy: transfer.GroupTo, To: "26", Aggregate: "count", Value: transfer.Transfers(3),
		WindowStart: start, WindowEnd: start.Add(30 * time.Minute), Total: 300, Count: 3, Threshold: transfer.Transfers(2),
		Transactions: []transfer.AlertTransfer{{ID: "t1", Time: start, Amount: 100, From: "66"}, {ID: "t2", Time: start.Add(time.Minute), Amount: 100, From: "67"}},
		Truncated:    true, Time: start.Add(2 * time.Minute)}
	got := string(Format(a.ID(), a))
	want := "Detected Fraud: TransactionAggregate {startTimestamp=2017-07-23T01:00:00Z, endTimestamp=2017-07-23T01:30:00Z, totalAmount=3.00, count=3, threshold=2, to='26', rule=fan-in, groupBy=to, aggregate=count, id=" + a.ID() + ":\n" +
		"Transaction{timestamp=2017-07-23T01:00:00Z, origin='66', target='26', amount=1.00, id=t1}\n" +
		"Transaction{timestamp=2017-07-23T01:01:00Z, origin='67', target='26', amount=1.00, id=t2}\n" +
		"... and 1 more\n}\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	js := string(FormatJSON(a.ID(), a))
	for _, w := range []string{`"id":"` + a.ID() + `"`, `"rule":"fan-in"`, `"groupBy":"to"`, `"aggregate":"count"`, `"value":3,`, `"threshold":2,`, `"from":"66"`} {
		if !strings.Contains(js, w) {
			t.Errorf("%s not in %s", w, js)
		}
	}
}
