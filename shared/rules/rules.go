// Package rules is detection as data: a set of rules, each summing or
// counting the transfers of a group (a pair, a sender or a receiver) in
// sliding event-time windows and alerting when a window goes strictly over
// its threshold (SPEC section 3). A set comes from the YAML file named by
// RULES_FILE, or, without one, is the single rule "structuring" built from
// FRAUD_THRESHOLD, WINDOW_SIZE and WINDOW_SLIDE: the seed's job.
//
// The package is plain data and validation: it imports no transport and no
// store. Watcher (watch.go) keeps the set in force up to date with the file.
package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fintrans/fintrans/shared/money"
)

// GroupBy names what a rule aggregates over.
type GroupBy string

// The groups a rule can aggregate over.
const (
	Pair GroupBy = "pair" // the ordered pair (from, to)
	From GroupBy = "from" // the sender
	To   GroupBy = "to"   // the receiver
)

// Aggregate names how a rule aggregates a window's transfers.
type Aggregate string

// The aggregates.
const (
	Sum   Aggregate = "sum"   // the amounts, in cents
	Count Aggregate = "count" // the number of transfers
)

// Bounds on one rule. A transfer belongs to ceil(window/slide) windows of a
// rule, and the store touches each of them: MaxWindowsPerTransfer bounds
// that work (the seed's 10m/2m is 5; 24h/1h is 24). Window plus lateness is
// how long a group's state must live: MaxStateSpan bounds it.
const (
	MaxWindowsPerTransfer = 64
	// MaxBucketsPerWindow bounds window / gcd(window, slide): the store
	// keeps a group's windows as buckets that wide, and reads a window's
	// buckets with each transfer (10m/2m: 5; 24h/1h: 24; 7m/3m: 7).
	MaxBucketsPerWindow  = 256
	MinSlide             = time.Second
	MaxStateSpan         = 31 * 24 * time.Hour
	MaxTransactionsLimit = 1000
	MaxRules             = 32
	DefaultRuleID        = "structuring"
)

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Rule is one validated detection rule.
type Rule struct {
	ID          string
	Description string
	GroupBy     GroupBy
	Aggregate   Aggregate
	// Threshold: an alert fires when a window's aggregate is strictly
	// greater. Cents for Sum, transfers for Count.
	Threshold       int64
	Window          time.Duration
	Slide           time.Duration
	Lateness        time.Duration // behind the newest time seen for the group
	MaxTransactions int           // transfers listed in an alert
	Enabled         bool
}

// WindowsPerTransfer is how many of the rule's windows hold one transfer.
func (r Rule) WindowsPerTransfer() int {
	return int((r.Window + r.Slide - 1) / r.Slide)
}

// BucketsPerWindow is window / gcd(window, slide): the buckets the store
// keeps per window and reads per transfer.
func (r Rule) BucketsPerWindow() int {
	g := gcd(int64(r.Window), int64(r.Slide))
	if g <= 0 {
		return 0
	}
	return int(int64(r.Window) / g)
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// ThresholdText is the threshold as people write it: 10000.00 for a sum,
// 12 for a count.
func (r Rule) ThresholdText() string {
	if r.Aggregate == Sum {
		return money.Cents(r.Threshold).String()
	}
	return strconv.FormatInt(r.Threshold, 10)
}

// StateKey identifies the layout of the rule's state: its id and what decides
// which windows exist and what they hold (group, aggregate, window, slide).
// A rule whose StateKey changes starts its windows afresh (its old state
// expires on its own); a change of threshold, lateness, the listed-transfer
// cap, the description or enabled keeps them.
func (r Rule) StateKey() string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s|%s|%d|%d", r.GroupBy, r.Aggregate, r.Window.Milliseconds(), r.Slide.Milliseconds())))
	return r.ID + "." + hex.EncodeToString(h[:4])
}

// Set is the rules in force.
type Set struct {
	Rules []Rule
	// Version names this set: the first 12 hex digits of the SHA-256 of the
	// file's bytes, or "default" for the rule built from the environment.
	Version string
	// Source is where it came from: the file's path, or the variables.
	Source string
}

// Enabled returns the rules that evaluate transfers.
func (s Set) Enabled() []Rule {
	var out []Rule
	for _, r := range s.Rules {
		if r.Enabled {
			out = append(out, r)
		}
	}
	return out
}

// Defaults are what a rule that leaves a field out gets, and the single rule
// used without RULES_FILE.
type Defaults struct {
	Threshold       money.Cents   // FRAUD_THRESHOLD
	Window          time.Duration // WINDOW_SIZE
	Slide           time.Duration // WINDOW_SLIDE
	Lateness        time.Duration // ALLOWED_LATENESS
	MaxTransactions int           // ALERT_MAX_TRANSACTIONS
}

// Default is the set without RULES_FILE: one pair rule, "structuring",
// summing amounts over the configured window.
func Default(d Defaults) (Set, error) {
	r := Rule{
		ID: DefaultRuleID, Description: "more than the threshold moved from one account to another inside a window",
		GroupBy: Pair, Aggregate: Sum, Threshold: int64(d.Threshold), Window: d.Window, Slide: d.Slide,
		Lateness: d.Lateness, MaxTransactions: d.MaxTransactions, Enabled: true,
	}
	if err := r.validate(); err != nil {
		return Set{}, fmt.Errorf("FRAUD_THRESHOLD/WINDOW_SIZE/WINDOW_SLIDE: %w", err)
	}
	return Set{Rules: []Rule{r}, Version: "default", Source: "FRAUD_THRESHOLD/WINDOW_SIZE/WINDOW_SLIDE"}, nil
}

// file is the YAML layout: `rules:` then a list. Unknown keys are refused.
type file struct {
	Rules []fileRule `yaml:"rules"`
}

type fileRule struct {
	ID              string    `yaml:"id"`
	Description     string    `yaml:"description"`
	GroupBy         string    `yaml:"groupBy"`
	Aggregate       string    `yaml:"aggregate"`
	Threshold       yaml.Node `yaml:"threshold"`
	Window          string    `yaml:"window"`
	Slide           string    `yaml:"slide"`
	Lateness        *string   `yaml:"lateness"`
	MaxTransactions *int      `yaml:"maxTransactions"`
	Enabled         *bool     `yaml:"enabled"`
}

// Parse reads a rules file's bytes. Errors name the rule (by id, or by its
// position when it has none) and the field.
func Parse(data []byte, d Defaults) (Set, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return Set{}, fmt.Errorf("not a rules file (`rules:` then a list of rules): %s", oneLine(err.Error()))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return Set{}, errors.New("more than one YAML document: put every rule under one `rules:`")
	}
	if len(f.Rules) == 0 {
		return Set{}, errors.New("no rules: `rules:` must list at least one rule")
	}
	if len(f.Rules) > MaxRules {
		return Set{}, fmt.Errorf("%d rules, more than the limit of %d", len(f.Rules), MaxRules)
	}
	set := Set{Rules: make([]Rule, 0, len(f.Rules))}
	seen := map[string]bool{}
	for i, fr := range f.Rules {
		name := fmt.Sprintf("rule %d", i+1)
		if fr.ID != "" {
			name = fmt.Sprintf("rule %q", fr.ID)
		}
		r, err := fr.rule(d)
		if err != nil {
			return Set{}, fmt.Errorf("%s: %w", name, err)
		}
		if seen[r.ID] {
			return Set{}, fmt.Errorf("%s: id: used by two rules", name)
		}
		seen[r.ID] = true
		set.Rules = append(set.Rules, r)
	}
	sum := sha256.Sum256(data)
	set.Version = hex.EncodeToString(sum[:6])
	return set, nil
}

func (fr fileRule) rule(d Defaults) (Rule, error) {
	r := Rule{
		ID: fr.ID, Description: strings.TrimSpace(fr.Description),
		GroupBy: GroupBy(fr.GroupBy), Aggregate: Aggregate(fr.Aggregate),
		Lateness: d.Lateness, MaxTransactions: d.MaxTransactions, Enabled: true,
	}
	if !idRE.MatchString(r.ID) {
		return r, fmt.Errorf("id: %q is not 1 to 63 of a-z, 0-9, _ and - (starting with a letter or digit)", fr.ID)
	}
	switch r.GroupBy {
	case Pair, From, To:
	default:
		return r, fmt.Errorf("groupBy: %q is not pair, from or to", fr.GroupBy)
	}
	switch r.Aggregate {
	case Sum, Count:
	default:
		return r, fmt.Errorf("aggregate: %q is not sum or count", fr.Aggregate)
	}
	var err error
	if r.Threshold, err = threshold(fr.Threshold, r.Aggregate); err != nil {
		return r, fmt.Errorf("threshold: %w", err)
	}
	if r.Window, err = duration(fr.Window); err != nil {
		return r, fmt.Errorf("window: %w", err)
	}
	if r.Slide, err = duration(fr.Slide); err != nil {
		return r, fmt.Errorf("slide: %w", err)
	}
	if fr.Lateness != nil {
		if r.Lateness, err = time.ParseDuration(*fr.Lateness); err != nil || r.Lateness < 0 {
			return r, fmt.Errorf("lateness: %q is not a duration of 0 or more such as 1h", *fr.Lateness)
		}
	}
	if fr.MaxTransactions != nil {
		r.MaxTransactions = *fr.MaxTransactions
	}
	if fr.Enabled != nil {
		r.Enabled = *fr.Enabled
	}
	return r, r.validate()
}

// validate holds the bounds every rule keeps, from a file or the environment.
func (r Rule) validate() error {
	switch {
	case r.Threshold < 0 || (r.Aggregate == Sum && r.Threshold <= 0):
		return errors.New("threshold: must be greater than zero")
	case r.Window <= 0:
		return errors.New("window: must be greater than zero")
	case r.Slide < MinSlide || r.Slide%time.Millisecond != 0:
		return fmt.Errorf("slide: %s is below %s or not whole milliseconds", r.Slide, MinSlide)
	case r.Window%time.Millisecond != 0:
		return fmt.Errorf("window: %s is not whole milliseconds", r.Window)
	case r.Slide > r.Window:
		return fmt.Errorf("slide: %s is longer than the window %s (a transfer between two windows would belong to none)", r.Slide, r.Window)
	case r.WindowsPerTransfer() > MaxWindowsPerTransfer:
		return fmt.Errorf("window: %s / slide %s puts a transfer in %d windows, more than %d", r.Window, r.Slide, r.WindowsPerTransfer(), MaxWindowsPerTransfer)
	case r.BucketsPerWindow() > MaxBucketsPerWindow:
		return fmt.Errorf("window: %s and slide %s have a greatest common divisor of %s: %d buckets a window, more than %d (make the window a multiple of a longer step)",
			r.Window, r.Slide, time.Duration(gcd(int64(r.Window), int64(r.Slide))), r.BucketsPerWindow(), MaxBucketsPerWindow)
	case r.Lateness < 0:
		return errors.New("lateness: must not be negative")
	case r.Window+r.Lateness > MaxStateSpan:
		return fmt.Errorf("window + lateness is %s, more than %s", r.Window+r.Lateness, MaxStateSpan)
	case r.MaxTransactions < 0 || r.MaxTransactions > MaxTransactionsLimit:
		return fmt.Errorf("maxTransactions: %d is not from 0 to %d", r.MaxTransactions, MaxTransactionsLimit)
	}
	return nil
}

// threshold reads a sum's threshold as an exact decimal (never through a
// float) and a count's as a whole number.
func threshold(n yaml.Node, agg Aggregate) (int64, error) {
	if n.Kind == 0 {
		return 0, errors.New("missing")
	}
	if n.Kind != yaml.ScalarNode {
		return 0, errors.New("not a number")
	}
	if agg == Count {
		v, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("%q is not a whole number of transfers (0 or more)", n.Value)
		}
		return v, nil
	}
	c, err := money.Parse(n.Value)
	if err != nil {
		return 0, fmt.Errorf("%q: %v", n.Value, err)
	}
	return int64(c), nil
}

func duration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("missing (a duration such as 10m)")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 10m", s)
	}
	return d, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
