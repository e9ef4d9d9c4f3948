// Package window is the window store: the pair's sliding event-time windows
// live in Redis and one Lua script applies each transfer atomically (lateness,
// dedupe, HINCRBY into every window holding the transfer, which tells whether
// this transfer crossed the threshold, evidence, pruning, expiry). It works unchanged on a standalone
// Redis and on a Redis Cluster: all keys of a pair share one hash tag.
package window

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/event"
	"github.com/fintrans/fintrans/shared/money"
)

//go:embed window.lua
var scriptSource string

// Script is the window script.
var Script = redis.NewScript(scriptSource)

// Config is the detection configuration the script applies.
type Config struct {
	Threshold       money.Cents
	Size            time.Duration
	Slide           time.Duration
	Lateness        time.Duration
	MaxTransactions int           // evidence listed per alert
	TTL             time.Duration // idle time after which a pair's keys expire
	KeyPrefix       string        // default "ft:"
}

// Status is what the store did with a transfer.
type Status int

const (
	Counted Status = iota + 1
	Duplicate
	Late
)

func (s Status) String() string {
	switch s {
	case Counted:
		return "counted"
	case Duplicate:
		return "duplicate"
	case Late:
		return "late"
	}
	return "unknown"
}

// Outcome is the result of one transfer.
type Outcome struct {
	Status Status
	Alerts []event.Alert // fired (or, for a redelivered duplicate, fired again)
	Newest time.Time     // for Late: the newest time seen for the pair
}

// Store applies transfers to Redis.
type Store struct {
	rdb    redis.UniversalClient
	cfg    Config
	bucket int64 // bucket width: gcd(size, slide) in ms
	size   int64 // ms
	slide  int64 // ms
	args   [7]string
}

// New makes a store. It does not touch Redis; call Load to check the
// connection and load the script.
func New(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	size, slide := cfg.Size.Milliseconds(), cfg.Slide.Milliseconds()
	switch {
	case size <= 0 || slide <= 0 || cfg.Size%time.Millisecond != 0 || cfg.Slide%time.Millisecond != 0:
		return nil, errors.New("window size and slide must be positive whole milliseconds")
	case slide > size:
		return nil, errors.New("window slide is longer than the window size")
	case cfg.Threshold <= 0:
		return nil, errors.New("threshold must be positive")
	case cfg.Lateness < 0:
		return nil, errors.New("lateness must not be negative")
	case cfg.MaxTransactions < 0:
		return nil, errors.New("max transactions must not be negative")
	case cfg.TTL < cfg.Lateness+cfg.Size:
		return nil, errors.New("state TTL must be at least lateness + window size")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "ft:"
	}
	g := gcd(size, slide)
	s := &Store{rdb: rdb, cfg: cfg, bucket: g, size: size, slide: slide}
	for i, v := range []int64{int64(cfg.Threshold), size, slide, g, cfg.Lateness.Milliseconds(), int64(cfg.MaxTransactions), cfg.TTL.Milliseconds()} {
		s.args[i] = strconv.FormatInt(v, 10)
	}
	return s, nil
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Config returns the store's configuration.
func (s *Store) Config() Config { return s.cfg }

// Load loads the script into Redis (every master of a cluster).
func (s *Store) Load(ctx context.Context) error {
	return Script.Load(ctx, s.rdb).Err()
}

// Keys returns the three keys of a pair. The hash tag is the base64url form of
// both ids joined by '.', a character base64url never produces: no two pairs
// share a tag whatever their ids hold, and no tag contains '{' or '}'.
func (s *Store) Keys(from, to string) [3]string {
	tag := s.cfg.KeyPrefix + "{" + base64.RawURLEncoding.EncodeToString([]byte(from)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(to)) + "}:"
	return [3]string{tag + "h", tag + "s", tag + "e"}
}

// idKey identifies a delivery by (source, id): the first 16 bytes of the
// SHA-256 of the length-prefixed pair, in base64url (22 bytes). Short and
// fixed, so that a pair's dedupe set stays a compact listpack in Redis
// (members over zset-max-listpack-value, 64 bytes, turn it into a skiplist of
// about 200 bytes a member); 128 bits make a collision between two distinct
// transfers of one pair practically impossible.
func idKey(t event.Transfer) string {
	sum := sha256.Sum256([]byte(strconv.Itoa(len(t.Source)) + ":" + t.Source + t.ID))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// Apply runs the script for each transfer, all in one pipeline (split by
// go-redis per cluster node). It returns an outcome per transfer, or an error
// when Redis failed: then the caller must not acknowledge any of them (the
// ones that did run are recognised as duplicates when redelivered).
func (s *Store) Apply(ctx context.Context, ts []event.Transfer) ([]Outcome, error) {
	out := make([]Outcome, len(ts))
	pending := make([]int, len(ts))
	for i := range pending {
		pending[i] = i
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		cmds := make([]*redis.Cmd, len(pending))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for k, i := range pending {
				cmds[k] = s.evalSha(ctx, p, ts[i])
			}
			return nil
		})
		var retry []int
		for k, i := range pending {
			cerr := cmds[k].Err()
			if isNoScript(cerr) {
				retry = append(retry, i)
				continue
			}
			if cerr != nil {
				return nil, fmt.Errorf("window script: %w", cerr)
			}
			o, perr := s.parse(ts[i], cmds[k].Val())
			if perr != nil {
				return nil, perr
			}
			out[i] = o
		}
		if len(retry) == 0 {
			if err != nil && !isNoScript(err) {
				return nil, fmt.Errorf("window script: %w", err)
			}
			break
		}
		// Redis lost its script cache (a restart, SCRIPT FLUSH, a failover):
		// load it again and rerun what did not run.
		if attempt >= 2 {
			return nil, fmt.Errorf("window script: %w", cmds[0].Err())
		}
		if lerr := s.Load(ctx); lerr != nil {
			return nil, fmt.Errorf("loading window script: %w", lerr)
		}
		pending = retry
	}
	return out, nil
}

func (s *Store) evalSha(ctx context.Context, p redis.Pipeliner, t event.Transfer) *redis.Cmd {
	k := s.Keys(t.From, t.To)
	return Script.EvalSha(ctx, p, k[:], s.argv(t)...)
}

// argv is the script's ARGV for t: the transfer, the configuration, and the
// decimal indices of every bucket the windows holding t cover (b0..b1).
func (s *Store) argv(t event.Transfer) []any {
	ms := t.Time.UnixMilli()
	newest := ms / s.slide * s.slide // the latest window start holding ms
	oldest := newest
	for oldest-s.slide > ms-s.size {
		oldest -= s.slide
	}
	b0, b1 := oldest/s.bucket, (newest+s.size)/s.bucket-1
	args := make([]any, 0, 13+b1-b0+1)
	args = append(args, idKey(t), strconv.FormatInt(ms, 10), strconv.FormatInt(int64(t.Amount), 10),
		s.args[0], s.args[1], s.args[2], s.args[3], s.args[4], s.args[5], s.args[6], t.ID,
		strconv.FormatInt(b0, 10))
	for j := b0; j <= b1; j++ {
		args = append(args, strconv.FormatInt(j, 10))
	}
	return args
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}

// parse reads the script's answer {status, info, alert...}.
func (s *Store) parse(t event.Transfer, v any) (Outcome, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) < 2 {
		return Outcome{}, fmt.Errorf("window script: unexpected answer %T", v)
	}
	st, _ := arr[0].(int64)
	o := Outcome{Status: Status(st)}
	switch o.Status {
	case Counted, Duplicate:
	case Late:
		n, _ := arr[1].(int64)
		o.Newest = time.UnixMilli(n).UTC()
		return o, nil
	default:
		return Outcome{}, fmt.Errorf("window script: unknown status %v", arr[0])
	}
	for _, raw := range arr[2:] {
		a, err := s.parseAlert(t, raw)
		if err != nil {
			return Outcome{}, err
		}
		o.Alerts = append(o.Alerts, a)
	}
	return o, nil
}

func (s *Store) parseAlert(t event.Transfer, raw any) (event.Alert, error) {
	f, ok := raw.([]any)
	if !ok || len(f) != 5 {
		return event.Alert{}, fmt.Errorf("window script: malformed alert %v", raw)
	}
	start, _ := f[0].(int64)
	total, _ := f[1].(int64)
	count, _ := f[2].(int64)
	fired, _ := f[3].(int64)
	ev, _ := f[4].([]any)
	a := event.Alert{
		From:         t.From,
		To:           t.To,
		WindowStart:  time.UnixMilli(start).UTC(),
		WindowEnd:    time.UnixMilli(start).Add(s.cfg.Size).UTC(),
		Total:        money.Cents(total),
		Threshold:    s.cfg.Threshold,
		Count:        int(count),
		Time:         time.UnixMilli(fired).UTC(),
		Transactions: make([]event.AlertTransfer, 0, len(ev)/2),
	}
	for k := 0; k+1 < len(ev); k += 2 {
		member, _ := ev[k].(string)
		score, _ := ev[k+1].(string)
		// member is "seq:amount:id"
		_, rest, _ := strings.Cut(member, ":")
		amt, id, _ := strings.Cut(rest, ":")
		cents, err1 := strconv.ParseInt(amt, 10, 64)
		ms, err2 := strconv.ParseInt(score, 10, 64)
		if err1 != nil || err2 != nil {
			return event.Alert{}, fmt.Errorf("window script: malformed evidence %q", member)
		}
		a.Transactions = append(a.Transactions, event.AlertTransfer{ID: id, Time: time.UnixMilli(ms).UTC(), Amount: money.Cents(cents)})
	}
	a.Truncated = len(a.Transactions) < a.Count
	return a, nil
}

// PairState is what Redis holds for one pair, for tools and tests.
type PairState struct {
	Newest  time.Time                 // newest event time seen
	Seq     int64                     // transfers counted
	Seen    int64                     // ids remembered for dedupe
	Windows map[time.Time]money.Cents // window start -> total, for the windows still kept
	Alerted int                       // windows that fired
}

// Inspect reads a pair's state.
func (s *Store) Inspect(ctx context.Context, from, to string) (PairState, error) {
	k := s.Keys(from, to)
	h, err := s.rdb.HGetAll(ctx, k[0]).Result()
	if err != nil {
		return PairState{}, err
	}
	seen, err := s.rdb.ZCard(ctx, k[1]).Result()
	if err != nil {
		return PairState{}, err
	}
	ps := PairState{Seen: seen, Windows: map[time.Time]money.Cents{}}
	for f, v := range h {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case f == "t" && err == nil:
			ps.Newest = time.UnixMilli(n).UTC()
		case f == "n" && err == nil:
			ps.Seq = n
		case strings.HasPrefix(f, "w") && err == nil:
			i, ierr := strconv.ParseInt(f[1:], 10, 64)
			if ierr == nil {
				ps.Windows[time.UnixMilli(i*s.bucket).UTC()] = money.Cents(n)
			}
		case strings.HasPrefix(f, "a"):
			ps.Alerted++
		}
	}
	return ps, nil
}
