package rules_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fintrans/fintrans/shared/metrics"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/rules"
)

var defaults = rules.Defaults{Threshold: 10000_00, Window: 10 * time.Minute, Slide: 2 * time.Minute,
	Lateness: time.Hour, MaxTransactions: 50}

func TestDefaultIsTheSeedsRule(t *testing.T) {
	s, err := rules.Default(defaults)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rules) != 1 || s.Version != "default" {
		t.Fatalf("%+v", s)
	}
	r := s.Rules[0]
	want := rules.Rule{ID: "structuring", Description: r.Description, GroupBy: rules.Pair, Aggregate: rules.Sum,
		Threshold: 10000_00, Window: 10 * time.Minute, Slide: 2 * time.Minute, Lateness: time.Hour,
		MaxTransactions: 50, Enabled: true}
	if r != want {
		t.Errorf("default rule %+v, want %+v", r, want)
	}
	if r.WindowsPerTransfer() != 5 || r.ThresholdText() != "10000.00" {
		t.Errorf("windows per transfer %d, threshold %s", r.WindowsPerTransfer(), r.ThresholdText())
	}
	bad := defaults
	bad.Slide = 0
	if _, err := rules.Default(bad); err == nil || !strings.Contains(err.Error(), "WINDOW_SLIDE") {
		t.Errorf("a zero slide: %v", err)
	}
}

func TestExampleFile(t *testing.T) {
	s, err := rules.Load(filepath.Join("testdata", "example.yaml"), defaults)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rules) != 5 || len(s.Enabled()) != 4 || len(s.Version) != 12 || !strings.HasSuffix(s.Source, "example.yaml") {
		t.Fatalf("%+v", s)
	}
	byID := map[string]rules.Rule{}
	for _, r := range s.Rules {
		byID[r.ID] = r
	}
	cases := []struct {
		id        string
		group     rules.GroupBy
		agg       rules.Aggregate
		threshold int64
		window    time.Duration
		slide     time.Duration
		lateness  time.Duration
		maxTx     int
		enabled   bool
	}{
		{"structuring", rules.Pair, rules.Sum, 10000_00, 10 * time.Minute, 2 * time.Minute, time.Hour, 50, true},
		{"daily-sender-total", rules.From, rules.Sum, 10000_00, 24 * time.Hour, time.Hour, 2 * time.Hour, 100, true},
		{"fan-in", rules.To, rules.Count, 20, 30 * time.Minute, 10 * time.Minute, time.Hour, 50, true},
		{"velocity", rules.From, rules.Count, 5, 4 * time.Minute, 4 * time.Minute, time.Hour, 50, true},
		{"large-pair-week", rules.Pair, rules.Sum, 50000_01, 7 * time.Minute, 3 * time.Minute, time.Hour, 50, false},
	}
	for _, c := range cases {
		r, ok := byID[c.id]
		if !ok {
			t.Errorf("rule %s missing", c.id)
			continue
		}
		if r.GroupBy != c.group || r.Aggregate != c.agg || r.Threshold != c.threshold || r.Window != c.window ||
			r.Slide != c.slide || r.Lateness != c.lateness || r.MaxTransactions != c.maxTx || r.Enabled != c.enabled {
			t.Errorf("%s: %+v", c.id, r)
		}
	}
	// 7m/3m: windows start every 3m and last 7m, so a transfer is in 3.
	if n := byID["large-pair-week"].WindowsPerTransfer(); n != 3 {
		t.Errorf("7m/3m: %d windows per transfer, want 3", n)
	}
}

// Every refusal names the rule and the field.
func TestBadFilesNameRuleAndField(t *testing.T) {
	rule := func(fields string) string {
		return "rules:\n  - id: r1\n    groupBy: pair\n    aggregate: sum\n    threshold: 100\n    window: 10m\n    slide: 2m\n" + fields
	}
	cases := []struct{ name, file, want string }{
		{"empty", "", "not a rules file"},
		{"no rules", "rules: []\n", "no rules"},
		{"not a list", "rules: 3\n", "not a rules file"},
		{"unknown key", rule("    colour: red\n"), "colour"},
		{"misspelt key", strings.Replace(rule(""), "groupBy", "groupby", 1), "groupby"},
		{"bad id", strings.Replace(rule(""), "id: r1", "id: \"R 1\"", 1), `rule "R 1": id:`},
		{"no id", strings.Replace(rule(""), "id: r1", "description: x", 1), "rule 1: id:"},
		{"duplicate id", rule("") + strings.TrimPrefix(rule(""), "rules:\n"), `rule "r1": id: used by two rules`},
		{"bad group", strings.Replace(rule(""), "groupBy: pair", "groupBy: bank", 1), `rule "r1": groupBy: "bank"`},
		{"bad aggregate", strings.Replace(rule(""), "aggregate: sum", "aggregate: avg", 1), `rule "r1": aggregate: "avg"`},
		{"three decimals", strings.Replace(rule(""), "threshold: 100", "threshold: 100.001", 1), `rule "r1": threshold:`},
		{"zero sum", strings.Replace(rule(""), "threshold: 100", "threshold: 0", 1), `rule "r1": threshold:`},
		{"count not whole", strings.Replace(strings.Replace(rule(""), "threshold: 100", "threshold: 2.5", 1), "sum", "count", 1), `rule "r1": threshold: "2.5"`},
		{"no threshold", strings.Replace(rule(""), "    threshold: 100\n", "", 1), `rule "r1": threshold: missing`},
		{"no window", strings.Replace(rule(""), "    window: 10m\n", "", 1), `rule "r1": window: missing`},
		{"bad slide", strings.Replace(rule(""), "slide: 2m", "slide: soon", 1), `rule "r1": slide: "soon"`},
		{"tiny slide", strings.Replace(rule(""), "slide: 2m", "slide: 10ms", 1), `rule "r1": slide:`},
		{"too many windows", strings.Replace(rule(""), "window: 10m", "window: 24h", 1), "more than 64"},
		{"negative lateness", rule("    lateness: -1m\n"), `rule "r1": lateness:`},
		{"too long", strings.Replace(strings.Replace(rule(""), "window: 10m", "window: 800h", 1), "slide: 2m", "slide: 24h", 1), "window + lateness"},
		{"max transactions", rule("    maxTransactions: 5000\n"), `rule "r1": maxTransactions: 5000`},
		{"two documents", rule("") + "---\nrules: []\n", "more than one YAML document"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := rules.Parse([]byte(c.file), defaults)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
	p := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(p, []byte("rules: []\n"), 0o600)
	if _, err := rules.Load(p, defaults); err == nil || !strings.HasPrefix(err.Error(), "RULES_FILE "+p+": ") {
		t.Errorf("Load's error does not name RULES_FILE: %v", err)
	}
	if _, err := rules.Load(p+".missing", defaults); err == nil || !strings.Contains(err.Error(), "RULES_FILE") {
		t.Errorf("missing file: %v", err)
	}
}

// Sum thresholds are read as exact decimals: 10000.01 is 1,000,001 cents
// whether written as a number or a string, never a float's neighbour.
func TestSumThresholdIsExact(t *testing.T) {
	for _, v := range []string{"10000.01", `"10000.01"`, "'10000.01'"} {
		s, err := rules.Parse([]byte("rules:\n- {id: a, groupBy: from, aggregate: sum, threshold: "+v+", window: 1h, slide: 1h}\n"), defaults)
		if err != nil {
			t.Fatal(err)
		}
		if got := money.Cents(s.Rules[0].Threshold); got != 10000_01 {
			t.Errorf("threshold %s read as %d cents", v, got)
		}
	}
}

// A changed group, aggregate, window or slide starts the rule's windows
// afresh (a new state key); threshold, lateness and the rest keep them.
func TestStateKeyFollowsTheStateLayout(t *testing.T) {
	base := rules.Rule{ID: "r", GroupBy: rules.Pair, Aggregate: rules.Sum, Threshold: 1, Window: time.Hour, Slide: time.Minute,
		Lateness: time.Hour, MaxTransactions: 5, Enabled: true}
	keep := []func(*rules.Rule){
		func(r *rules.Rule) { r.Threshold = 2 },
		func(r *rules.Rule) { r.Lateness = 0 },
		func(r *rules.Rule) { r.MaxTransactions = 9 },
		func(r *rules.Rule) { r.Description = "x" },
		func(r *rules.Rule) { r.Enabled = false },
	}
	fresh := []func(*rules.Rule){
		func(r *rules.Rule) { r.GroupBy = rules.From },
		func(r *rules.Rule) { r.Aggregate = rules.Count },
		func(r *rules.Rule) { r.Window = 2 * time.Hour },
		func(r *rules.Rule) { r.Slide = 2 * time.Minute },
		func(r *rules.Rule) { r.ID = "s" },
	}
	for i, f := range keep {
		r := base
		f(&r)
		if r.StateKey() != base.StateKey() {
			t.Errorf("keep %d: state key changed", i)
		}
	}
	for i, f := range fresh {
		r := base
		f(&r)
		if r.StateKey() == base.StateKey() {
			t.Errorf("fresh %d: state key unchanged", i)
		}
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

const oneRule = "rules:\n- {id: a, groupBy: pair, aggregate: sum, threshold: 100, window: 10m, slide: 2m}\n"
const twoRules = oneRule + "- {id: b, groupBy: to, aggregate: count, threshold: 3, window: 4m, slide: 4m}\n"

// A mounted ConfigMap (or OpenFaaS secret) is updated by swapping a symlink:
// rules.yaml -> ..data/rules.yaml, ..data -> ..2026_12_02_xx (a new folder).
// The watcher takes the new file, refuses a bad one keeping the previous
// rules (logged and counted), and takes a good one again after it.
func TestWatcherFollowsASymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	swap := func(name, content string) {
		t.Helper()
		d := filepath.Join(dir, name)
		os.Mkdir(d, 0o755)
		writeFile(t, filepath.Join(d, "rules.yaml"), content)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	swap("..v1", oneRule)
	if err := os.Symlink(filepath.Join("..data", "rules.yaml"), filepath.Join(dir, "rules.yaml")); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	w, err := rules.NewWatcher(filepath.Join(dir, "rules.yaml"), defaults, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var changes []rules.Set
	w.OnChange(func(s rules.Set) { changes = append(changes, s) })
	v1 := w.Current().Version
	if w.Check() {
		t.Fatal("an unchanged file counted as a change")
	}

	swap("..v2", twoRules)
	if !w.Check() || len(w.Current().Rules) != 2 || len(changes) != 1 || w.Current().Version == v1 {
		t.Fatalf("the swapped file was not taken: %+v", w.Current())
	}
	v2 := w.Current().Version

	errsBefore := testutil.ToFloat64(metrics.RulesReloadErrors)
	swap("..v3", "rules:\n- {id: a, groupBy: bank}\n")
	if w.Check() || w.Current().Version != v2 {
		t.Fatalf("a bad file replaced the rules in force: %+v", w.Current())
	}
	w.Check() // the same bad bytes: logged and counted once
	if got := testutil.ToFloat64(metrics.RulesReloadErrors) - errsBefore; got != 1 {
		t.Errorf("reload errors counted %v times, want 1", got)
	}
	if !strings.Contains(logs.String(), "rules not reloaded") || !strings.Contains(logs.String(), `groupBy: \"bank\"`) {
		t.Errorf("the refusal was not logged with its reason:\n%s", logs.String())
	}

	swap("..v4", oneRule)
	if !w.Check() || w.Current().Version != v1 || len(changes) != 2 {
		t.Fatalf("the good file after a bad one was not taken: %+v", w.Current())
	}
}

// Run picks a change up within its interval.
func TestWatcherRun(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, p, oneRule)
	w, err := rules.NewWatcher(p, defaults, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx, 10*time.Millisecond)
	writeFile(t, p+".new", twoRules)
	os.Rename(p+".new", p)
	deadline := time.Now().Add(5 * time.Second)
	for len(w.Current().Rules) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the new file was not taken within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := rules.NewWatcher(p+".missing", defaults, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a missing RULES_FILE at start was accepted")
	}
}
