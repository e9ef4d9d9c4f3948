package window

import (
	"fmt"
	"time"

	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/rules"
)

// Config is the detection configuration the script applies: one rule's.
type Config struct {
	// The rule: its id, what it groups by and how it aggregates. Zero
	// values: rules.DefaultRuleID, a pair, a sum (the seed's rule).
	Rule      string
	GroupBy   rules.GroupBy
	Aggregate rules.Aggregate
	// Threshold: cents for a sum, transfers for a count.
	Threshold       money.Cents
	Size            time.Duration
	Slide           time.Duration
	Lateness        time.Duration
	MaxTransactions int           // evidence listed per alert
	TTL             time.Duration // idle time after which a pair's keys expire
	KeyPrefix       string        // default "ft:"

	// MinReplicas is how many replicas must confirm a batch's writes (WAIT)
	// before Apply returns them; 0 waits for none; AutoReplicas (-1): 1 on a
	// Redis Cluster whose every primary has a replica, else 0, found out by
	// Load or by the first Apply (see ResolveReplicas).
	MinReplicas int
	// ReplicaTimeout bounds that wait (required with MinReplicas).
	ReplicaTimeout time.Duration
}

// FieldError names the field of a Config at fault (the config package maps
// it to its environment variable).
type FieldError struct {
	Field  string // "Size", "Slide", "Threshold", "Lateness", "MaxTransactions", "TTL", "MinReplicas" or "ReplicaTimeout"
	Reason string
}

func (e *FieldError) Error() string { return e.Reason }

// Validate checks the configuration: the one place its rules are written.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case c.Size <= 0 || c.Size%time.Millisecond != 0:
		return bad("Size", "window size %s must be positive whole milliseconds", c.Size)
	case c.Slide <= 0 || c.Slide%time.Millisecond != 0:
		return bad("Slide", "window slide %s must be positive whole milliseconds", c.Slide)
	case c.Slide > c.Size:
		return bad("Slide", "window slide %s is longer than the window size %s", c.Slide, c.Size)
	case c.Threshold < 0 || (c.Threshold == 0 && c.Aggregate != rules.Count):
		return bad("Threshold", "threshold must be positive")
	case c.Lateness < 0:
		return bad("Lateness", "lateness must not be negative")
	case c.MaxTransactions < 0:
		return bad("MaxTransactions", "max transactions must not be negative")
	case c.TTL < c.Lateness+c.Size:
		return bad("TTL", "state TTL %s is shorter than lateness + window size (%s)", c.TTL, c.Lateness+c.Size)
	case c.MinReplicas < AutoReplicas:
		return bad("MinReplicas", "min replicas must not be negative")
	case c.MinReplicas != 0 && c.ReplicaTimeout < time.Millisecond:
		return bad("ReplicaTimeout", "min replicas needs a replica timeout of at least 1ms")
	}
	return nil
}

// ForRule is the configuration of the store that evaluates rule r: the
// connection settings of c (TTL, KeyPrefix, MinReplicas, ReplicaTimeout)
// and r's window. The keys expire after at least r's window plus lateness
// (c.TTL when longer).
func (c Config) ForRule(r rules.Rule) Config {
	c.Rule, c.GroupBy, c.Aggregate = r.ID, r.GroupBy, r.Aggregate
	c.Threshold, c.Size, c.Slide, c.Lateness, c.MaxTransactions = money.Cents(r.Threshold), r.Window, r.Slide, r.Lateness, r.MaxTransactions
	c.TTL = max(c.TTL, r.Window+r.Lateness)
	return c
}

// FirstStart is the start of the earliest window (of the given size and
// slide, aligned to the Unix epoch) that holds t: the smallest multiple of
// slide that is greater than t-size.
func FirstStart(t time.Time, size, slide time.Duration) time.Time {
	ms := t.UnixMilli()
	sz, sl := size.Milliseconds(), slide.Milliseconds()
	if sz <= 0 || sl <= 0 {
		return t
	}
	last := floorDiv(ms, sl) * sl // latest window start <= t
	first := last
	for first-sl > ms-sz {
		first -= sl
	}
	return time.UnixMilli(first).UTC()
}
