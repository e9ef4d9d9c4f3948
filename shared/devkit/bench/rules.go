package bench

import (
	"context"
	_ "embed"
	"errors"
	"sync/atomic"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/rules"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/window"
)

// exampleRules is the README's example rule set (shared/rules/testdata):
// the seed's pair sum, a sender's daily sum, a receiver count and a sender
// count enabled, one rule disabled.
//
//go:embed example.yaml
var exampleRules []byte

// rulesStage is stage 8: the cost of a rule. The detect core (as in stage
// 2, same workers and batches) runs the synthetic stream through the seed's
// one rule, then through the example's rule set; the extra microseconds per
// transfer divided by the extra rules is the cost of one rule.
func (r *runner) rulesStage(ctx context.Context) error {
	if r.conns == 0 {
		return errors.New("no ceiling measured")
	}
	set, err := rules.Parse(exampleRules, r.cfg.RuleDefaults())
	if err != nil {
		return err
	}
	one, err := rules.Default(r.cfg.RuleDefaults())
	if err != nil {
		return err
	}
	base := r.cfg.Window()
	base.KeyPrefix = r.prefix
	r.printf("\n[8] rules: detect core with the seed's rule, then with the example's %d enabled rules, %d workers x batches of %d\n",
		len(set.Enabled()), r.conns, r.pipe)
	measure := func(name string, rs []rules.Rule) (rate, us float64, err error) {
		if err := r.reset(ctx); err != nil {
			return 0, 0, err
		}
		st, err := window.NewRules(r.rdb, base, rs)
		if err != nil {
			return 0, 0, err
		}
		if err := st.Load(ctx); err != nil {
			return 0, 0, err
		}
		batches := r.buildEvents(max(r.pipe, int(r.detect*r.t.stage.Seconds()*1.2)), r.pipe)
		var alerts atomic.Int64
		d := &detect.Detector{Store: &window.Coalescer{Store: st}, Log: r.quiet, MaxClockSkew: streamSkew,
			Sink: sink.Func(func(_ context.Context, evs []ce.Event) error { alerts.Add(int64(len(evs))); return nil })}
		m := r.startMeter(ctx)
		deadline := time.Now().Add(r.t.stage)
		done, err := drive(ctx, d, batches, r.conns, deadline, nil)
		u := m.stop(ctx)
		if err != nil {
			return 0, 0, err
		}
		rate = float64(done) / u.wall.Seconds()
		r.printf("    %-10s %9s tx/s    %s %.1f µs/transfer, %d alerts\n", name, num(rate), u, u.usPer(done), alerts.Load())
		return rate, u.usPer(done), nil
	}
	rate1, us1, err := measure("1 rule", one.Rules)
	if err != nil {
		return err
	}
	rateN, usN, err := measure("example", set.Rules)
	if err != nil {
		return err
	}
	n := len(set.Enabled())
	per := (usN - us1) / float64(n-1)
	r.res.RulesOneTxPerS = round(rate1, 0)
	r.res.RulesExampleTxPerS = round(rateN, 0)
	r.res.RulesExampleCount = n
	r.res.RuleUsPerTransfer = round(per, 2)
	r.printf("    => %d rules: %s of one rule's rate; each rule beyond the first costs %.1f µs of Redis script time a transfer\n",
		n, pct(rateN, rate1), per)
	return r.reset(ctx)
}
