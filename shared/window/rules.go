package window

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/rules"
	"github.com/fintrans/fintrans/shared/transfer"
)

// Applier applies transfers: a *Store (one rule), *Rules (a rule set) or a
// *Coalescer in front of either.
type Applier interface {
	Apply(ctx context.Context, ts []transfer.Transfer) ([]Outcome, error)
}

// Rules evaluates a rule set: one Store a rule, each transfer through every
// enabled rule, each rule's script calls in a pipeline of their own (all
// rules at once). Set swaps the set at runtime: a batch is judged by the
// set in force when it starts.
//
// A transfer's outcome merges its rules': Counted when at least one rule
// counted it; else Late when a rule refused it as late (then no rule
// changed anything); else Duplicate. Its alerts are every rule's, in the
// order of the set. LateFor names the rules that refused it as late, also
// when another counted it.
type Rules struct {
	rdb  redis.UniversalClient
	base Config

	mu     sync.Mutex // serialises Set
	stores atomic.Pointer[[]*Store]
}

// NewRules makes the evaluator of set (its enabled rules) with the
// connection settings of base (TTL, KeyPrefix, MinReplicas,
// ReplicaTimeout). It does not touch Redis; call Load.
func NewRules(rdb redis.UniversalClient, base Config, set []rules.Rule) (*Rules, error) {
	r := &Rules{rdb: rdb, base: base}
	if err := r.Set(set); err != nil {
		return nil, err
	}
	return r, nil
}

// Set puts the enabled rules of set in force. A rule whose store
// configuration is unchanged keeps its Store; its state is in Redis either
// way, under keys named by the rule's StateKey: a rule keeps its windows
// across a change of threshold, lateness or maxTransactions, and starts
// afresh when its group, aggregate, window or slide change.
func (r *Rules) Set(set []rules.Rule) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := map[Config]*Store{}
	if cur := r.stores.Load(); cur != nil {
		for _, s := range *cur {
			old[s.cfg] = s
		}
	}
	var stores []*Store
	for _, rule := range set {
		if !rule.Enabled {
			continue
		}
		cfg := r.base.ForRule(rule)
		if cfg.KeyPrefix == "" {
			cfg.KeyPrefix = "ft:"
		}
		if s, ok := old[cfg]; ok {
			stores = append(stores, s)
			continue
		}
		s, err := New(r.rdb, cfg)
		if err != nil {
			return fmt.Errorf("rule %q: %w", rule.ID, err)
		}
		stores = append(stores, s)
	}
	r.stores.Store(&stores)
	return nil
}

// Stores are the stores of the rules in force, in the set's order.
func (r *Rules) Stores() []*Store { return *r.stores.Load() }

// Load loads the script and, with AutoReplicas, finds out how many replicas
// to wait for.
func (r *Rules) Load(ctx context.Context) error {
	var errs []error
	for _, s := range r.Stores() {
		errs = append(errs, s.Load(ctx))
	}
	return errors.Join(errs...)
}

// MinReplicas is the replicas a batch's writes wait for (see
// Store.MinReplicas): AutoReplicas until found out.
func (r *Rules) MinReplicas() int {
	if st := r.Stores(); len(st) > 0 {
		return st[0].MinReplicas()
	}
	return r.base.MinReplicas
}

// Apply applies ts through every rule in force, as Store.Apply does for
// one: an error means some rule's calls may not have run, and nothing may
// be acknowledged (the redelivery is exact: each rule recognises what it
// counted).
func (r *Rules) Apply(ctx context.Context, ts []transfer.Transfer) ([]Outcome, error) {
	stores := r.Stores()
	switch len(stores) {
	case 0:
		out := make([]Outcome, len(ts))
		for i := range out {
			out[i].Status = Counted // no rule evaluates anything
		}
		return out, nil
	case 1:
		return stores[0].Apply(ctx, ts)
	}
	outs := make([][]Outcome, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for k, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[k], errs[k] = s.Apply(ctx, ts)
		}()
	}
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			var re *ReplicaError
			if errors.As(err, &re) {
				return nil, err
			}
			return nil, fmt.Errorf("rule %q: %w", stores[k].cfg.Rule, err)
		}
	}
	out := make([]Outcome, len(ts))
	for i := range out {
		o := &out[i]
		counted, late := false, false
		for k := range stores {
			ro := outs[k][i]
			switch ro.Status {
			case Counted:
				counted = true
			case Late:
				if !late {
					o.Newest = ro.Newest
				}
				late = true
				o.LateFor = append(o.LateFor, ro.LateFor...)
			}
			o.Alerts = append(o.Alerts, ro.Alerts...)
		}
		switch {
		case counted:
			o.Status = Counted
		case late:
			o.Status = Late
		default:
			o.Status = Duplicate
		}
	}
	return out, nil
}
