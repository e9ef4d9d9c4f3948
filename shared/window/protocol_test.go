package window

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/rules"
	"github.com/fintrans/fintrans/shared/transfer"
)

// The positions protocol.go names are the ones window.lua reads.
func TestProtocolMatchesTheScript(t *testing.T) {
	reads := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^local (\w+) = (?:tonumber\()?ARGV\[(\d+)\]`).FindAllStringSubmatch(scriptSource, -1) {
		reads[m[1]], _ = strconv.Atoi(m[2])
	}
	want := map[string]int{"thr": argThreshold, "size": argSize, "slide": argSlide, "g": argBucket, "late": argLateness,
		"cap": argCap, "ttl": argTTL, "n": argN, "B0": argB0, "nb": argNB}
	for name, pos := range want {
		if reads[name] != pos {
			t.Errorf("window.lua reads %s from ARGV[%d], protocol.go says %d", name, reads[name], pos)
		}
	}
	for _, line := range []string{
		fmt.Sprintf("local first = %d + 2 * nb", argIndices),
		fmt.Sprintf("local V = %d + nb - B0", argIndices),
		fmt.Sprintf("local a = first + %d * (k - 1)", argsPerTransfer),
		fmt.Sprintf("local count = ARGV[#ARGV] == '%s'", aggCount),
		fmt.Sprintf("return %d", answerPlain),
		"return {3, newest}",
		"if #alerts == 0 then return {2, 0} end",
		"local out = {status, info, ev}",
		"ev[#ev + 1] = j",
		"ev[#ev + 1] = v",
		"alerts[i] = {st, sum, cnt, t, seq}",
		"return {st, tonumber(total), tonumber(cnt), tonumber(ft), tonumber(seq)}",
	} {
		if !strings.Contains(scriptSource, line) {
			t.Errorf("window.lua lacks %q", line)
		}
	}
	if alertStart != 0 || alertTotal != 1 || alertCount != 2 || alertTime != 3 || alertSeq != 4 || alertFields != 5 {
		t.Error("the alert's fields moved: change window.lua's answers with them")
	}
	if answerStatus != 0 || answerInfo != 1 || answerEvidence != 2 || answerAlerts != 3 {
		t.Error("the answer's positions moved: change window.lua's answer() with them")
	}
}

// One call's KEYS and ARGV, argument by argument.
func TestProtocolCallArguments(t *testing.T) {
	r := rules.Rule{ID: "velocity", GroupBy: rules.From, Aggregate: rules.Count, Threshold: 5, Window: 4 * time.Minute,
		Slide: 2 * time.Minute, Lateness: time.Hour, MaxTransactions: 3, Enabled: true}
	s, err := New(nil, Config{TTL: 24 * time.Hour}.ForRule(r))
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(240_000) // bucket 2 (g = 2m); windows 2m and 4m: buckets 1 to 3
	ts := []transfer.Transfer{{Source: "/s", ID: "x1", Time: at, From: "a", To: "bé", Amount: 12_34}}
	keys, args := s.callArgs(ts, call{idx: []int{0}, lo: 1, hi: 3})
	tag := "ft:{f:" + r.StateKey() + ":YQ}:"
	if !slices.Equal(keys, []string{tag + "h", tag + "s"}) {
		t.Errorf("keys %q", keys)
	}
	// One transfer: no indices (the script formats its few).
	want := []any{"5", "240000", "120000", "120000", "3600000", "3", "86400000", // threshold .. ttl
		"1", "0", "0", // n, B0, nb: no indices, no names
		idKey(ts[0]), "240000", "1234", "1234,7:3:béx1", // the transfer (payload: "3:bé" then the id, 7 bytes)
		"count"}
	if !slices.Equal(args, want) {
		t.Errorf("args\n%q\nwant\n%q", args, want)
	}
	if args[argThreshold-1] != "5" || args[argN-1] != "1" || args[argNB-1] != "0" || args[len(args)-1] != aggCount {
		t.Error("positions do not match protocol.go")
	}
	// Two: the indices their windows cover, then their names.
	ts = append(ts, transfer.Transfer{Source: "/s", ID: "x2", Time: at, From: "a", To: "c", Amount: 5})
	keys, args = s.callArgs(ts, call{idx: []int{0, 1}, lo: 1, hi: 3})
	if !slices.Equal(keys, []string{tag + "h", tag + "s", tag + "h", tag + "s"}) {
		t.Errorf("keys %q", keys)
	}
	want = []any{"5", "240000", "120000", "120000", "3600000", "3", "86400000",
		"2", "1", "3", "1", "2", "3", "v1", "v2", "v3", // n, B0, nb, indices, names
		idKey(ts[0]), "240000", "1234", "1234,7:3:béx1",
		idKey(ts[1]), "240000", "5", "5,5:1:cx2",
		"count"}
	if !slices.Equal(args, want) {
		t.Errorf("args\n%q\nwant\n%q", args, want)
	}
	if args[argN-1] != "2" || args[argIndices-1] != "1" || args[len(args)-1] != aggCount {
		t.Error("positions do not match protocol.go")
	}
}

// A malformed answer is an error, never zeros.
func TestProtocolMalformedAnswers(t *testing.T) {
	s, err := New(nil, Config{Threshold: 100, Size: time.Minute, Slide: time.Minute, MaxTransactions: 5, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tr := transfer.Transfer{Source: "/s", ID: "x", From: "a", To: "b", Amount: 1}
	alert := []any{int64(0), int64(200), int64(2), int64(5), int64(2)}
	ev := []any{int64(0), "2,5|1,5,100,1:x2,5,100,1:y"} // bucket 0 (g = 1m), two entries
	o, err := s.parse(tr, []any{int64(1), int64(2), ev, alert})
	if err != nil || o.Status != Counted || len(o.Alerts) != 1 || o.Alerts[0].Total != money.Cents(200) || len(o.Alerts[0].Transactions) != 2 {
		t.Fatalf("a good answer: %+v %v", o, err)
	}
	if o, err := s.parse(tr, []any{int64(2), int64(0)}); err != nil || o.Status != Duplicate || len(o.Alerts) != 0 {
		t.Fatalf("a duplicate without alerts: %+v %v", o, err)
	}
	with := func(k int, v any) []any { a := slices.Clone(alert); a[k] = v; return a }
	for name, v := range map[string]any{
		"nil":                  nil,
		"integer 0":            int64(0),
		"a string":             "1",
		"empty array":          []any{},
		"status only":          []any{int64(1)},
		"unknown status":       []any{int64(9), int64(0)},
		"string status":        []any{"1", int64(0)},
		"late with alerts":     []any{int64(3), int64(5), ev, alert},
		"evidence, no alert":   []any{int64(1), int64(2), ev},
		"short alert":          []any{int64(1), int64(2), ev, alert[:4]},
		"long alert":           []any{int64(1), int64(2), ev, append(slices.Clone(alert), int64(1))},
		"string total":         []any{int64(1), int64(2), ev, with(alertTotal, "200")},
		"zero count":           []any{int64(1), int64(2), ev, with(alertCount, int64(0))},
		"evidence not array":   []any{int64(1), int64(2), "x", alert},
		"evidence odd":         []any{int64(1), int64(2), []any{int64(0)}, alert},
		"evidence bucket text": []any{int64(1), int64(2), []any{"0", ev[1]}, alert},
		"evidence string int":  []any{int64(1), int64(2), []any{int64(0), int64(1)}, alert},
		"evidence garbled":     []any{int64(1), int64(2), []any{int64(0), "2,5|1,5,100,9:x"}, alert},
		"alert not array":      []any{int64(1), int64(2), ev, int64(7)},
	} {
		if o, err := s.parse(tr, v); err == nil {
			t.Errorf("%s: accepted as %+v", name, o)
		}
	}
}
