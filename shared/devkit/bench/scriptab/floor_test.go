package main

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
)

// floor.lua speaks the window script's protocol (the store takes its
// answers: every transfer counted, none fired, even one over the threshold
// alone) and does its one read and one write a transfer: the pair's hash
// holds the last transfer's time.
func TestFloorScriptSpeaksTheProtocol(t *testing.T) {
	src, err := os.ReadFile("floor.lua")
	if err != nil {
		t.Fatal(err)
	}
	builtin := window.Script
	window.Script = redis.NewScript(string(src))
	t.Cleanup(func() { window.Script = builtin })

	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	st, err := window.New(rdb, config.Default().Window())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 2, 13, 0, 0, 0, time.UTC)
	ts := []transfer.Transfer{
		{Source: "s", ID: "1", Time: at, From: "a", To: "b", Amount: 500_00},
		{Source: "s", ID: "2", Time: at.Add(time.Second), From: "a", To: "b", Amount: 20_000_00},
		{Source: "s", ID: "3", Time: at.Add(2 * time.Second), From: "b", To: "a", Amount: 1_00},
	}
	out, err := st.Apply(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if o.Status != window.Counted || len(o.Alerts) != 0 {
			t.Errorf("transfer %d: %+v, want counted with no alert", i, o)
		}
	}
	for _, tr := range []transfer.Transfer{ts[1], ts[2]} {
		h := st.Keys(tr.From, tr.To)[0]
		got, err := rdb.HGet(ctx, h, "t").Result()
		if want := strconv.FormatInt(tr.Time.UnixMilli(), 10); err != nil || got != want {
			t.Errorf("%s t = %q (%v), want %s", h, got, err, want)
		}
	}
}
