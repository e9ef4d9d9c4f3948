// Package windowtest checks what the window store holds in Redis against the
// Flink reference, for tests of every package that drives the store.
//
// Test tooling, not product: no function image and no serving path of the
// binary (serve, consume) links it (go list -deps proves it; see README).
package windowtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
	"github.com/fintrans/fintrans/shared/window/flinkref"
)

// CountedOnce fails t unless Redis counted every distinct transfer of ts
// (by source and id) exactly once: per pair, the sequence number and the ids
// remembered equal the distinct transfers, and every window's total equals
// the reference sum. It holds for streams that span less than the allowed
// lateness (nothing pruned yet).
func CountedOnce(t testing.TB, st *window.Store, ts []transfer.Transfer) {
	t.Helper()
	cfg := st.Config()
	distinct := map[[2]string]int64{}
	seen := map[[2]string]bool{}
	for _, tr := range ts {
		if !seen[[2]string{tr.Source, tr.ID}] {
			seen[[2]string{tr.Source, tr.ID}] = true
			distinct[[2]string{tr.From, tr.To}]++
		}
	}
	want := map[[2]string]map[time.Time]int64{}
	for k, v := range flinkref.Sums(ts, cfg.Size, cfg.Slide) {
		p := [2]string{k.From, k.To}
		if want[p] == nil {
			want[p] = map[time.Time]int64{}
		}
		want[p][time.UnixMilli(k.Start).UTC()] = int64(v)
	}
	ctx := context.Background()
	for p, n := range distinct {
		ps, err := st.Inspect(ctx, p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		if ps.Seq != n || ps.Seen != n {
			t.Errorf("pair %s->%s: sequence %d and %d ids remembered, want %d distinct transfers (one counted twice or lost)", p[0], p[1], ps.Seq, ps.Seen, n)
		}
		if len(ps.Windows) != len(want[p]) {
			t.Errorf("pair %s->%s: %d windows in Redis, want %d", p[0], p[1], len(ps.Windows), len(want[p]))
		}
		for start, sum := range want[p] {
			if got := int64(ps.Windows[start]); got != sum {
				t.Errorf("pair %s->%s window %s: total %d cents, want %d", p[0], p[1], start.Format(time.RFC3339), got, sum)
			}
		}
	}
}

// Snapshot is every key of a Redis database with its type and content, to
// prove that something changed nothing. It reads each key by its type (not
// DUMP, which the embedded Redis supports for strings only), so it works on a
// real redis-server and on the embedded one alike.
type Snapshot map[string]string

// Take reads the snapshot of rdb.
func Take(t testing.TB, rdb *redis.Client) Snapshot {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := Snapshot{}
	for _, k := range keys {
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		case "hash":
			v, err = rdb.HGetAll(ctx, k).Result() // a map: printed with sorted keys
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "set":
			var m []string
			m, err = rdb.SMembers(ctx, k).Result()
			slices.Sort(m)
			v = m
		case "list":
			v, err = rdb.LRange(ctx, k, 0, -1).Result()
		default:
			t.Fatalf("snapshot: key %q of type %s", k, typ)
		}
		if err != nil {
			t.Fatal(err)
		}
		out[k] = typ + " " + fmt.Sprintf("%#v", v)
	}
	return out
}

// Equal reports whether two snapshots hold the same keys and values.
func (s Snapshot) Equal(o Snapshot) bool { return maps.Equal(s, o) }
