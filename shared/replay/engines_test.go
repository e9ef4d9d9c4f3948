package replay_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/codec/seedline"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/embedded"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/replay"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window/flinkref"
)

// `fintrans replay` without REDIS_URL gives the same alerts, byte for byte,
// on each engine of the embedded Redis, and they are the reference's: a
// seed-like file of 20,000 lines over 9,900 pairs and a day, where pairs come
// back hours later and the script prunes their old buckets.
func TestReplayIsTheSameOnEveryEngine(t *testing.T) {
	var seed bytes.Buffer
	if err := replay.WriteSeed(&seed, 20000, 1); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	var ts []transfer.Transfer
	sc := bufio.NewScanner(bytes.NewReader(seed.Bytes()))
	for sc.Scan() {
		tr, err := seedline.Parse(sc.Text())
		if err != nil {
			t.Fatal(err)
		}
		tr.Source, tr.ID = "file://seed", "line-"+strconv.Itoa(len(ts)+1)
		ts = append(ts, tr)
	}
	want := flinkref.Alerts(ts, cfg.Threshold, cfg.WindowSize, cfg.WindowSlide)
	if len(ts) != 20000 || len(want) == 0 || ts[len(ts)-1].Time.Sub(ts[0].Time) < 12*time.Hour {
		t.Fatalf("seed: %d lines over %s, %d reference alerts", len(ts), ts[len(ts)-1].Time.Sub(ts[0].Time), len(want))
	}

	outs := map[string][]byte{}
	for _, engine := range []string{embedded.Miniredis, embedded.RedisServer} {
		t.Run(engine, func(t *testing.T) {
			if engine == embedded.RedisServer && !redistest.Available() {
				redistest.Start(t) // skips, or fails on CI
			}
			cfg := cfg
			cfg.EmbeddedRedis = engine
			var out bytes.Buffer
			log := slog.New(slog.DiscardHandler)
			stop, err := embedded.ForConfig(context.Background(), &cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			sum, err := app.Replay(context.Background(), cfg, log, bytes.NewReader(seed.Bytes()), "file://seed", &out, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Lines != 20000 || sum.Counted != 20000 || sum.Alerts != len(want) {
				t.Fatalf("%s; the reference has %d alerts", sum, len(want))
			}
			dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
			got := map[flinkref.Key]bool{}
			for {
				var e struct{ Data transfer.Alert }
				if err := dec.Decode(&e); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				k := flinkref.Key{From: e.Data.From, To: e.Data.To, Start: e.Data.WindowStart.UnixMilli()}
				if _, ok := want[k]; !ok || got[k] {
					t.Errorf("alert %v: not in the reference, or twice", k)
				}
				got[k] = true
			}
			outs[engine] = out.Bytes()
		})
	}
	if a, b := outs[embedded.Miniredis], outs[embedded.RedisServer]; a != nil && b != nil && !bytes.Equal(a, b) {
		t.Error("the engines printed different alerts")
	}
}
