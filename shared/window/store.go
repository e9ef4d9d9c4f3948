// Package window is the window store: a group's sliding event-time windows
// live in Redis and one Lua script (window.lua) applies each transfer
// atomically: lateness, dedupe, the transfer's bucket total and the totals of
// the windows holding it (which tell whether this transfer crossed the
// threshold), evidence, pruning, expiry. A script call carries a batch of
// transfers applied one after another, each as if alone. It works unchanged
// on a standalone Redis and on a Redis Cluster: the keys of a group share one
// hash tag, and on a cluster a call carries one group's transfers.
//
// A Store evaluates one rule (by default the seed's: a pair's sum); Rules
// (rules.go) evaluates a rule set, one Store a rule, and takes a new set at
// runtime.
package window

import (
	"cmp"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/rules"
	"github.com/fintrans/fintrans/shared/transfer"
)

//go:embed window.lua
var scriptSource string

// Script is the window script.
var Script = redis.NewScript(scriptSource)

// Status is what the store did with a transfer (the domain's enum).
type Status = transfer.Status

// The statuses the store gives.
const (
	Counted   = transfer.Counted
	Duplicate = transfer.Duplicate
	Late      = transfer.Late
)

// Outcome is the result of one transfer.
type Outcome struct {
	Status Status
	Alerts []transfer.Alert // fired (or, for a redelivered duplicate, fired again)
	Newest time.Time        // for Late: the newest time seen for the group
	// LateFor lists the rules that refused the transfer as late for its
	// group (Rules: also when another rule counted it).
	LateFor []string
}

// Store applies transfers to Redis.
type Store struct {
	rdb    redis.UniversalClient
	cfg    Config
	bucket int64 // bucket width: gcd(size, slide) in ms
	size   int64 // ms
	slide  int64 // ms
	args   [7]string
	rule   rules.Rule // the rule evaluated (Threshold, Window, Slide: from cfg)
	maxIdx int64      // bucket indices a call sends formatted at most
	state  string     // rule.StateKey(), in every key

	minReplicas atomic.Int64 // cfg.MinReplicas once resolved; AutoReplicas until then
	assigned    sync.Map     // cluster node address -> assignedReplicas
}

// New makes a store. It does not touch Redis; call Load to check the
// connection and load the script.
func New(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	size, slide := cfg.Size.Milliseconds(), cfg.Slide.Milliseconds()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "ft:"
	}
	if cfg.Rule == "" {
		cfg.Rule = rules.DefaultRuleID
	}
	if cfg.GroupBy == "" {
		cfg.GroupBy = rules.Pair
	}
	if cfg.Aggregate == "" {
		cfg.Aggregate = rules.Sum
	}
	g := gcd(size, slide)
	r := rules.Rule{ID: cfg.Rule, GroupBy: cfg.GroupBy, Aggregate: cfg.Aggregate, Threshold: int64(cfg.Threshold),
		Window: cfg.Size, Slide: cfg.Slide, Lateness: cfg.Lateness, MaxTransactions: cfg.MaxTransactions, Enabled: true}
	s := &Store{rdb: rdb, cfg: cfg, bucket: g, size: size, slide: slide, rule: r, state: r.StateKey()}
	// One transfer's windows cover (windows - 1) slides and a window.
	s.maxIdx = max(maxIndices, 2*((int64(r.WindowsPerTransfer())-1)*slide+size)/g)
	s.minReplicas.Store(int64(cfg.MinReplicas))
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

// Load loads the script into Redis (every master of a cluster) and, with
// AutoReplicas, finds out how many replicas to wait for.
func (s *Store) Load(ctx context.Context) error {
	if err := Script.Load(ctx, s.rdb).Err(); err != nil {
		return err
	}
	_, err := s.resolveReplicas(ctx)
	return err
}

// Rule is the rule the store evaluates.
func (s *Store) Rule() rules.Rule { return s.rule }

// Keys returns the two keys of the group of a transfer from -> to: its
// state hash and its dedupe set. The hash tag is the kind of group (p, f or
// t), the rule's StateKey (letters, digits, '_', '-', '.'), then the
// base64url form of the group's account, or of both ids joined by '.' for a
// pair, all separated by ':': base64url never produces '.' or ':', so no two
// rules or groups share a tag whatever the ids hold, and no tag contains '{'
// or '}'. All keys of a group share the tag, so a hash slot.
func (s *Store) Keys(from, to string) [2]string {
	_, k := s.groupKeys(nil, from, to)
	return k
}

// groupKeys returns a group's two keys, the state hash (tag + "h") and the
// dedupe set (tag + "s"), built in buf, which it returns for reuse: it runs
// for every transfer.
func (s *Store) groupKeys(buf []byte, from, to string) ([]byte, [2]string) {
	buf = append(s.appendTag(buf[:0], from, to), 'h')
	h := string(buf)
	buf[len(buf)-1] = 's'
	return buf, [2]string{h, string(buf)}
}

// appendTag appends the group's tag to b: the key prefix, then
// "{p:<state>:<from>.<to>}:" for a pair, "{f:<state>:<from>}:" for a sender,
// "{t:<state>:<to>}:" for a receiver, ids in base64url.
func (s *Store) appendTag(b []byte, from, to string) []byte {
	enc := base64.RawURLEncoding
	kind := byte('p')
	switch s.cfg.GroupBy {
	case rules.From:
		kind = 'f'
	case rules.To:
		kind = 't'
	}
	b = append(b, s.cfg.KeyPrefix...)
	b = append(b, '{', kind, ':')
	b = append(b, s.state...)
	b = append(b, ':')
	switch kind {
	case 'f':
		b = enc.AppendEncode(b, []byte(from))
	case 't':
		b = enc.AppendEncode(b, []byte(to))
	default:
		b = enc.AppendEncode(b, []byte(from))
		b = append(b, '.')
		b = enc.AppendEncode(b, []byte(to))
	}
	return append(b, '}', ':')
}

// group is the group of a transfer: its pair, or its one account.
func (s *Store) group(t transfer.Transfer) [2]string {
	switch s.cfg.GroupBy {
	case rules.From:
		return [2]string{t.From, ""}
	case rules.To:
		return [2]string{"", t.To}
	}
	return [2]string{t.From, t.To}
}

// evidencePayload is what the evidence keeps of a transfer besides its
// time and amount: its id, and for a sender or receiver rule first the
// other account, length-prefixed ("3:bob" then the id). The script only
// measures it.
func (s *Store) evidencePayload(t transfer.Transfer) string {
	switch s.cfg.GroupBy {
	case rules.From:
		return strconv.Itoa(len(t.To)) + ":" + t.To + t.ID
	case rules.To:
		return strconv.Itoa(len(t.From)) + ":" + t.From + t.ID
	}
	return t.ID
}

// idKey identifies a delivery by (source, id): the first 16 bytes of the
// SHA-256 of the length-prefixed pair, in base64url (22 bytes). Short and
// fixed, so that a pair's dedupe set stays a compact listpack in Redis
// (members over zset-max-listpack-value, 64 bytes, turn it into a skiplist of
// about 200 bytes a member); 128 bits make a collision between two distinct
// transfers of one pair practically impossible.
func idKey(t transfer.Transfer) string {
	var in [256]byte // on the stack for the usual lengths
	b := strconv.AppendInt(in[:0], int64(len(t.Source)), 10)
	b = append(b, ':')
	b = append(b, t.Source...)
	b = append(b, t.ID...)
	sum := sha256.Sum256(b)
	var out [22]byte
	base64.RawURLEncoding.Encode(out[:], sum[:16])
	return string(out[:])
}

const (
	// MaxPerCall bounds the transfers of one script call: a call holds
	// Redis for its whole run (some 10-20 µs a transfer).
	MaxPerCall = 64
	// maxIndices bounds the bucket indices a call sends formatted (or
	// twice the span of one transfer's windows when that is more: 47
	// indices for 24h/1h); a batch
	// spread wider in event time is cut into more calls.
	maxIndices = 32
)

// Apply applies the transfers in order and returns an outcome per transfer,
// or an error when Redis failed: then the caller must not acknowledge any of
// them (the ones that did run are recognised as duplicates when
// redelivered). The transfers go to Redis in script calls of up to
// MaxPerCall (on a Redis Cluster, each call holds one pair's transfers, so
// that its keys share a slot), all calls in one pipeline (split per cluster
// node). A pair's transfers keep their order.
//
// With Config.MinReplicas > 0, each node's pipeline ends with WAIT on the
// same connection, and Apply returns a *ReplicaError when fewer replicas
// than that confirmed the writes within Config.ReplicaTimeout: the writes
// are on the primary but could be lost with it, so the batch must not be
// acknowledged.
func (s *Store) Apply(ctx context.Context, ts []transfer.Transfer) ([]Outcome, error) {
	minReplicas, err := s.resolveReplicas(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Outcome, len(ts))
	pending := s.plan(ts)
	for attempt := 0; len(pending) > 0; attempt++ {
		cmds, err := s.exec(ctx, ts, pending, minReplicas)
		var retry []call
		var retryErr error
		noScript, moved := false, false
		for k, c := range pending {
			cerr := cmds[k].Err()
			if isNoScript(cerr) || (minReplicas > 0 && notRun(cerr)) {
				retry, retryErr = append(retry, c), cerr
				noScript = noScript || isNoScript(cerr)
				moved = moved || notRun(cerr)
				continue
			}
			if cerr != nil {
				return nil, fmt.Errorf("window script: %w", cerr)
			}
			answers, ok := cmds[k].Val().([]any)
			if !ok || len(answers) != len(c.idx) {
				return nil, fmt.Errorf("window script: %d answers for %d transfers", len(answers), len(c.idx))
			}
			for j, i := range c.idx {
				o, perr := s.parse(ts[i], answers[j])
				if perr != nil {
					return nil, perr
				}
				out[i] = o
			}
		}
		if err != nil && minReplicas > 0 {
			// Not a call's own error: too few replicas confirmed, or WAIT
			// failed. Writes may be on the primary only.
			return nil, err
		}
		if len(retry) == 0 {
			if err != nil && !isNoScript(err) {
				return nil, fmt.Errorf("window script: %w", err)
			}
			break
		}
		if attempt >= 2 {
			return nil, fmt.Errorf("window script: %w", retryErr)
		}
		if noScript {
			// Redis lost its script cache (a restart, SCRIPT FLUSH, a
			// failover): load it again and rerun what did not run (a script
			// that fails with NOSCRIPT changed nothing).
			if lerr := s.Load(ctx); lerr != nil {
				return nil, fmt.Errorf("loading window script: %w", lerr)
			}
		}
		if moved {
			// MOVED, ASK, TRYAGAIN, CLUSTERDOWN: the node did not run the
			// call. The cluster state is being reloaded (redisconn); give it
			// a moment, then route the call again.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt+1) * 150 * time.Millisecond):
			}
		}
		pending = retry
	}
	return out, nil
}

// exec runs the calls: one pipeline, or with MinReplicas one pipeline per
// node ending with WAIT. It returns a command per call and, with
// MinReplicas, the errors that are no call's own (a *ReplicaError, WAIT
// failing); without, the pipeline's first error.
func (s *Store) exec(ctx context.Context, ts []transfer.Transfer, pending []call, minReplicas int) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(pending))
	if minReplicas <= 0 {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for k, c := range pending {
				keys, args := s.callArgs(ts, c)
				cmds[k] = Script.EvalSha(ctx, p, keys, args...)
			}
			return nil
		})
		return cmds, err
	}
	// WAIT counts the replicas that acknowledged the last write of its own
	// connection: every node that takes writes gets its own pipeline (one
	// connection), its calls, then WAIT.
	cc, cluster := s.rdb.(*redis.ClusterClient)
	if !cluster {
		return cmds, s.execNode(ctx, s.rdb, ts, pending, cmds, minReplicas)
	}
	type group struct {
		node *redis.Client
		idx  []int
	}
	var groups []*group
	byNode := map[*redis.Client]*group{}
	for k, c := range pending {
		first := s.Keys(ts[c.idx[0]].From, ts[c.idx[0]].To)[0]
		node, err := cc.MasterForKey(ctx, first)
		if err != nil {
			for j := range cmds {
				if cmds[j] == nil {
					cmds[j] = redis.NewCmd(ctx)
					cmds[j].SetErr(err)
				}
			}
			return cmds, err
		}
		g := byNode[node]
		if g == nil {
			g = &group{node: node}
			byNode[node] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, k)
	}
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for gi, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sub := make([]call, len(g.idx))
			subCmds := make([]*redis.Cmd, len(g.idx))
			for j, k := range g.idx {
				sub[j] = pending[k]
			}
			errs[gi] = s.execNode(ctx, g.node, ts, sub, subCmds, s.replicasOf(ctx, g.node, minReplicas))
			for j, k := range g.idx {
				cmds[k] = subCmds[j]
			}
		}()
	}
	wg.Wait()
	return cmds, errors.Join(errs...)
}

// execNode runs calls on one node in one pipeline, then makes sure their
// writes reached MinReplicas replicas. A PEXPIRE of a pair's state hash
// (whose expiry the script refreshes anyway) before WAIT makes the
// connection's last write the node's newest: a call that only found
// duplicates writes nothing, and WAIT would otherwise wait only for an older
// write of the connection, not for the unconfirmed state the duplicates
// were found in.
func (s *Store) execNode(ctx context.Context, rdb redis.Cmdable, ts []transfer.Transfer, calls []call, cmds []*redis.Cmd, minReplicas int) error {
	var wait *redis.Cmd
	_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, c := range calls {
			keys, args := s.callArgs(ts, c)
			cmds[k] = Script.EvalSha(ctx, p, keys, args...)
		}
		if minReplicas == 0 {
			return nil
		}
		last := ts[calls[len(calls)-1].idx[0]]
		p.PExpire(ctx, s.Keys(last.From, last.To)[0], s.cfg.TTL)
		// In the pipeline, WAIT's answer is read within the connection's read
		// timeout (3 s and more in go-redis): config keeps the timeout below.
		wait = p.Do(ctx, "WAIT", minReplicas, s.cfg.ReplicaTimeout.Milliseconds())
		return nil
	})
	ran := false
	for _, c := range cmds {
		ran = ran || c.Err() == nil
	}
	if !ran || minReplicas == 0 {
		return nil // nothing written: the calls' own errors tell what happened
	}
	if werr := wait.Err(); werr != nil {
		return fmt.Errorf("WAIT: %w", werr)
	}
	if got, _ := wait.Int64(); got < int64(minReplicas) {
		return &ReplicaError{Got: int(got), Want: minReplicas, Timeout: s.cfg.ReplicaTimeout}
	}
	return nil
}

// ReplicaError says that a batch's writes reached fewer replicas than
// Config.MinReplicas within Config.ReplicaTimeout: they are on the primary
// only, and a failover now could lose them. The batch must not be
// acknowledged; its redelivery is exact (dedupe).
type ReplicaError struct {
	Got, Want int
	Timeout   time.Duration
}

func (e *ReplicaError) Error() string {
	return fmt.Sprintf("writes confirmed by %d of the %d replicas required within %s (REDIS_MIN_REPLICAS, REDIS_REPLICA_TIMEOUT)",
		e.Got, e.Want, e.Timeout)
}

// notRun reports whether a call's error says the node did not run it: the
// slot is elsewhere or the cluster cannot serve it now.
func notRun(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := redis.IsMovedError(err); ok {
		return true
	}
	if _, ok := redis.IsAskError(err); ok {
		return true
	}
	return redis.IsTryAgainError(err) || redis.IsClusterDownError(err)
}

// call is one script call: indices into the transfers, in order, and the
// range of bucket indices their windows cover.
type call struct {
	idx    []int
	lo, hi int64
}

// plan cuts ts into script calls. A pair's transfers go one after another
// (in their order), so that the script reads and writes the pair's state
// once for all of them (transfers of different pairs are independent: each
// outcome depends on its own pair's state only). On a Redis Cluster a call
// holds one pair's transfers; elsewhere the pairs follow one another, in the
// order of their first transfer, cut into calls of MaxPerCall. ("Pair"
// is the rule's group: a pair, or one account for a sender or receiver rule.)
func (s *Store) plan(ts []transfer.Transfer) []call {
	var groups [][]int
	byPair := make(map[[2]string]int, len(ts))
	order := make([]int, 0, len(ts))
	for i, t := range ts {
		p := s.group(t)
		g, ok := byPair[p]
		if !ok {
			g = len(groups)
			byPair[p] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	if _, cluster := s.rdb.(*redis.ClusterClient); !cluster {
		for _, g := range groups {
			order = append(order, g...)
		}
		groups = [][]int{order}
	}
	var calls []call
	for _, g := range groups {
		cur := call{idx: g[:0]}
		for k, i := range g {
			b0, b1 := s.span(ts[i])
			if len(cur.idx) > 0 && (len(cur.idx) >= MaxPerCall || max(cur.hi, b1)-min(cur.lo, b0) >= s.maxIdx) {
				calls = append(calls, cur)
				cur = call{idx: g[k:k]}
			}
			if len(cur.idx) == 0 {
				cur.lo, cur.hi = b0, b1
			}
			cur.idx = cur.idx[:len(cur.idx)+1]
			cur.lo, cur.hi = min(cur.lo, b0), max(cur.hi, b1)
		}
		if len(cur.idx) > 0 {
			calls = append(calls, cur)
		}
	}
	return calls
}

// span is the range of bucket indices the windows holding t cover.
func (s *Store) span(t transfer.Transfer) (int64, int64) {
	ms := t.Time.UnixMilli()
	newest := floorDiv(ms, s.slide) * s.slide // the latest window start holding ms
	oldest := newest
	for oldest-s.slide > ms-s.size {
		oldest -= s.slide
	}
	return floorDiv(oldest, s.bucket), floorDiv(newest+s.size, s.bucket) - 1
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// callArgs is one call's KEYS and ARGV (see window.lua): the configuration,
// the decimal indices of every bucket its transfers' windows cover (none for
// a call of one transfer), and per
// transfer its dedupe key, time, amount and evidence tail.
func (s *Store) callArgs(ts []transfer.Transfer, c call) ([]string, []any) {
	lo, hi := c.lo, c.hi
	if len(c.idx) == 1 {
		// One transfer (on a Redis Cluster, a pair's lone transfer: most
		// calls): the script formats its few indices itself, cheaper than
		// receiving 2 x 9 more arguments.
		lo, hi = 0, -1
	}
	keys := make([]string, 0, 2*len(c.idx))
	args := make([]any, 0, len(s.args)+3+2*int(hi-lo+1)+argsPerTransfer*len(c.idx)+1)
	for _, a := range s.args {
		args = append(args, a)
	}
	args = append(args, strconv.Itoa(len(c.idx)), strconv.FormatInt(lo, 10), strconv.FormatInt(hi-lo+1, 10))
	first := len(args)
	for j := lo; j <= hi; j++ {
		args = append(args, strconv.FormatInt(j, 10))
	}
	for _, j := range args[first:] {
		args = append(args, "v"+j.(string))
	}
	var buf []byte
	for _, i := range c.idx {
		t := ts[i]
		var k [2]string
		buf, k = s.groupKeys(buf, t.From, t.To)
		keys = append(keys, k[0], k[1])
		// The amount, and the evidence tail "amount,len:payload", in one
		// string: amt is its head.
		buf = strconv.AppendInt(buf[:0], int64(t.Amount), 10)
		n := len(buf)
		payload := s.evidencePayload(t)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, int64(len(payload)), 10)
		buf = append(buf, ':')
		buf = append(buf, payload...)
		tail := string(buf)
		args = append(args, idKey(t), strconv.FormatInt(t.Time.UnixMilli(), 10), tail[:n], tail)
	}
	agg := aggSum
	if s.cfg.Aggregate == rules.Count {
		agg = aggCount
	}
	return keys, append(args, agg)
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}

// parse reads the script's answer for one transfer (see protocol.go): a
// malformed answer is an error, never read as zeros.
func (s *Store) parse(t transfer.Transfer, v any) (Outcome, error) {
	if n, ok := v.(int64); ok && n == answerPlain {
		return Outcome{Status: Counted}, nil
	}
	arr, ok := v.([]any)
	if !ok || len(arr) < 2 {
		return Outcome{}, fmt.Errorf("window script: unexpected answer %#v", v)
	}
	st, ok1 := arr[answerStatus].(int64)
	info, ok2 := arr[answerInfo].(int64)
	if !ok1 || !ok2 {
		return Outcome{}, fmt.Errorf("window script: malformed status %#v", arr[:2])
	}
	o := Outcome{Status: Status(st)}
	switch o.Status {
	case Counted, Duplicate:
	case Late:
		if len(arr) != answerEvidence {
			return Outcome{}, fmt.Errorf("window script: a late answer with alerts %#v", arr)
		}
		o.Newest = time.UnixMilli(info).UTC()
		o.LateFor = []string{s.cfg.Rule}
		return o, nil
	default:
		return Outcome{}, fmt.Errorf("window script: unknown status %v", arr[0])
	}
	if len(arr) == answerEvidence {
		return o, nil
	}
	if len(arr) <= answerAlerts {
		return Outcome{}, fmt.Errorf("window script: evidence without alerts %#v", arr)
	}
	// The evidence of the alerts' buckets, each parsed once.
	raw, ok := arr[answerEvidence].([]any)
	if !ok || len(raw)%2 != 0 {
		return Outcome{}, fmt.Errorf("window script: malformed evidence %#v", arr[answerEvidence])
	}
	buckets := make(map[int64][]evidenceEntry, len(raw)/2)
	for k := 0; k < len(raw); k += 2 {
		b, ok1 := raw[k].(int64)
		str, ok2 := raw[k+1].(string)
		if !ok1 || !ok2 {
			return Outcome{}, fmt.Errorf("window script: malformed evidence %#v", raw[k:k+2])
		}
		es, err := parseEvidence(str, math.MaxInt64, nil)
		if err != nil {
			return Outcome{}, err
		}
		buckets[b] = es
	}
	for _, raw := range arr[answerAlerts:] {
		a, err := s.parseAlert(t, raw, buckets)
		if err != nil {
			return Outcome{}, err
		}
		o.Alerts = append(o.Alerts, a)
	}
	return o, nil
}

func (s *Store) parseAlert(t transfer.Transfer, raw any, buckets map[int64][]evidenceEntry) (transfer.Alert, error) {
	bad := func() (transfer.Alert, error) {
		return transfer.Alert{}, fmt.Errorf("window script: malformed alert %#v", raw)
	}
	f, ok := raw.([]any)
	if !ok || len(f) != alertFields {
		return bad()
	}
	var n [alertFields]int64
	for k := range n {
		if n[k], ok = f[k].(int64); !ok {
			return bad()
		}
	}
	start, total, count, fired, seq := n[alertStart], n[alertTotal], n[alertCount], n[alertTime], n[alertSeq]
	if total <= 0 || count <= 0 || seq <= 0 {
		return bad()
	}
	g := s.group(t)
	a := transfer.Alert{
		Rule:        s.cfg.Rule,
		GroupBy:     string(s.cfg.GroupBy),
		From:        g[0],
		To:          g[1],
		Aggregate:   string(s.cfg.Aggregate),
		Value:       transfer.Cents(money.Cents(total)),
		WindowStart: time.UnixMilli(start).UTC(),
		WindowEnd:   time.UnixMilli(start).Add(s.cfg.Size).UTC(),
		Total:       money.Cents(total),
		Threshold:   transfer.Cents(s.cfg.Threshold),
		Count:       int(count),
		Time:        time.UnixMilli(fired).UTC(),
	}
	if s.cfg.Aggregate == rules.Count {
		a.Value, a.Threshold = transfer.Transfers(count), transfer.Transfers(int64(s.cfg.Threshold))
	}
	// The entries of the window's buckets known when the alert fired.
	var es []evidenceEntry
	first := floorDiv(start, s.bucket)
	for b := first; b < first+s.size/s.bucket; b++ {
		for _, e := range buckets[b] {
			if e.seq <= seq {
				es = append(es, e)
			}
		}
	}
	slices.SortFunc(es, func(x, y evidenceEntry) int {
		if c := cmp.Compare(x.ms, y.ms); c != 0 {
			return c
		}
		return cmp.Compare(x.seq, y.seq)
	})
	if len(es) > s.cfg.MaxTransactions {
		es = es[:s.cfg.MaxTransactions]
	}
	a.Transactions = make([]transfer.AlertTransfer, len(es))
	for i, e := range es {
		at := transfer.AlertTransfer{ID: e.id, Time: time.UnixMilli(e.ms).UTC(), Amount: e.amount}
		if s.cfg.GroupBy != rules.Pair {
			// "len:other" then the id (evidencePayload).
			ls, rest, ok := strings.Cut(e.id, ":")
			k, err := strconv.Atoi(ls)
			if !ok || err != nil || k < 0 || k > len(rest) {
				return transfer.Alert{}, fmt.Errorf("window script: malformed evidence payload %q", e.id)
			}
			at.ID = rest[k:]
			if s.cfg.GroupBy == rules.From {
				at.To = rest[:k]
			} else {
				at.From = rest[:k]
			}
		}
		a.Transactions[i] = at
	}
	a.Truncated = len(a.Transactions) < a.Count
	return a, nil
}

// evidenceEntry is one transfer listed in a bucket's evidence.
type evidenceEntry struct {
	seq, ms int64
	amount  money.Cents
	id      string
}

// parseEvidence appends to out the entries of one bucket's evidence string
// ("count,bound|" then "seq,time,amount,len:id" one after another) whose
// sequence number is at most maxSeq: the transfers known when the alert
// fired.
func parseEvidence(s string, maxSeq int64, out []evidenceEntry) ([]evidenceEntry, error) {
	bad := func() ([]evidenceEntry, error) {
		return nil, fmt.Errorf("window script: malformed evidence %q", s)
	}
	_, s, ok := strings.Cut(s, "|")
	if !ok {
		return bad()
	}
	for s != "" {
		var nums [4]int64
		for k := range nums {
			sep := byte(',')
			if k == 3 {
				sep = ':'
			}
			j := strings.IndexByte(s, sep)
			if j < 0 {
				return bad()
			}
			n, err := strconv.ParseInt(s[:j], 10, 64)
			if err != nil {
				return bad()
			}
			nums[k], s = n, s[j+1:]
		}
		if nums[3] < 0 || nums[3] > int64(len(s)) {
			return bad()
		}
		id := s[:nums[3]]
		s = s[nums[3]:]
		if nums[0] <= maxSeq {
			out = append(out, evidenceEntry{seq: nums[0], ms: nums[1], amount: money.Cents(nums[2]), id: id})
		}
	}
	return out, nil
}

// PairState is what Redis holds for one pair, for tools and tests.
type PairState struct {
	Newest  time.Time                 // newest event time seen
	Seq     int64                     // transfers counted
	Seen    int64                     // ids remembered for dedupe
	Windows map[time.Time]money.Cents // window start -> total, for the windows still kept
	Alerted int                       // windows that fired
}

// Inspect reads a pair's state. A window's total is the sum of its buckets;
// the windows listed are those holding a transfer that starts at or after
// the lowest bucket kept.
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
	buckets := map[int64]int64{}
	lo := int64(math.MinInt64)
	for f, v := range h {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case f == "t" && err == nil:
			ps.Newest = time.UnixMilli(n).UTC()
		case f == "n" && err == nil:
			ps.Seq = n
		case f == "lo" && err == nil:
			lo = n
		case strings.HasPrefix(f, "v") && err == nil:
			if i, ierr := strconv.ParseInt(f[1:], 10, 64); ierr == nil {
				buckets[i] = n
			}
		case f == "f":
			ps.Seen++ // the first transfer, remembered in the hash until a second comes
		case strings.HasPrefix(f, "a"):
			ps.Alerted++
		}
	}
	span := s.size / s.bucket
	for b := range buckets {
		// The windows holding bucket b start at multiples of slide in
		// (b*g - size, b*g].
		for st := floorDiv(b*s.bucket, s.slide) * s.slide; st > b*s.bucket-s.size; st -= s.slide {
			first := st / s.bucket
			if first < lo {
				continue
			}
			start := time.UnixMilli(st).UTC()
			if _, done := ps.Windows[start]; done {
				continue
			}
			var total int64
			for j := first; j < first+span; j++ {
				total += buckets[j]
			}
			ps.Windows[start] = money.Cents(total)
		}
	}
	return ps, nil
}
