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
		"out[#out + 1] = {st, sum, n, t, seq, evidence(h, st)}",
		"return {st, tonumber(total), tonumber(cnt), tonumber(ft), tonumber(seq), evidence(h, st)}",
	} {
		if !strings.Contains(scriptSource, line) {
			t.Errorf("window.lua lacks %q", line)
		}
	}
	if alertStart != 0 || alertTotal != 1 || alertCount != 2 || alertTime != 3 || alertSeq != 4 || alertEvidence != 5 || alertFields != 6 {
		t.Error("the alert's fields moved: change window.lua's answers with them")
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
	want := []any{"5", "240000", "120000", "120000", "3600000", "3", "86400000", // threshold .. ttl
		"1", "1", "3", "1", "2", "3", "v1", "v2", "v3", // n, B0, nb, indices, names
		idKey(ts[0]), "240000", "1234", "1234,7:3:béx1", // the transfer (payload: "3:bé" then the id, 7 bytes)
		"count"}
	if !slices.Equal(args, want) {
		t.Errorf("args\n%q\nwant\n%q", args, want)
	}
	if args[argThreshold-1] != "5" || args[argN-1] != "1" || args[argIndices-1] != "1" || args[len(args)-1] != aggCount {
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
	good := []any{int64(0), int64(200), int64(2), int64(5), int64(2), []any{"2,5|1,5,100,1:x2,5,100,1:y"}}
	o, err := s.parse(tr, []any{int64(1), int64(2), good})
	if err != nil || o.Status != Counted || len(o.Alerts) != 1 || o.Alerts[0].Total != money.Cents(200) || len(o.Alerts[0].Transactions) != 2 {
		t.Fatalf("a good answer: %+v %v", o, err)
	}
	with := func(k int, v any) []any { a := slices.Clone(good); a[k] = v; return a }
	for name, v := range map[string]any{
		"nil":                nil,
		"integer 0":          int64(0),
		"a string":           "1",
		"empty array":        []any{},
		"status only":        []any{int64(1)},
		"unknown status":     []any{int64(9), int64(0)},
		"string status":      []any{"1", int64(0)},
		"late with alerts":   []any{int64(3), int64(5), good},
		"short alert":        []any{int64(1), int64(2), good[:5]},
		"string total":       []any{int64(1), int64(2), with(alertTotal, "200")},
		"zero count":         []any{int64(1), int64(2), with(alertCount, int64(0))},
		"evidence not array": []any{int64(1), int64(2), with(alertEvidence, "x")},
		"evidence number":    []any{int64(1), int64(2), with(alertEvidence, []any{int64(1)})},
		"evidence garbled":   []any{int64(1), int64(2), with(alertEvidence, []any{"2,5|1,5,100,9:x"})},
		"alert not array":    []any{int64(1), int64(2), int64(7)},
	} {
		if o, err := s.parse(tr, v); err == nil {
			t.Errorf("%s: accepted as %+v", name, o)
		}
	}
}
