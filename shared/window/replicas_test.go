package window_test

import (
	"context"
	"errors"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/window"
)

// replicated starts a primary and one replica of it (DEBUG enabled) and
// returns clients for both once the link is up.
func replicated(t *testing.T) (primary, replica *redis.Client) {
	t.Helper()
	p := redistest.Start(t)
	r := redistest.Start(t, redistest.WithArgs("--enable-debug-command", "yes"))
	primary, replica = p.Client(t), r.Client(t)
	host, port, _ := strings.Cut(p.Addr, ":")
	ctx := context.Background()
	if err := replica.SlaveOf(ctx, host, port).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := replica.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return primary, replica
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica link not up: %v %s", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// With MinReplicas the store still matches the reference, and a batch whose
// writes a frozen replica did not confirm fails with a *ReplicaError. So
// does its redelivery on another connection, though it finds only
// duplicates and its script writes nothing: its WAIT covers the unconfirmed
// state it read.
func TestMinReplicasWaitsForTheReplica(t *testing.T) {
	primary, replica := replicated(t)
	cfg := defaultCfg
	cfg.MinReplicas, cfg.ReplicaTimeout = 1, 200*time.Millisecond
	s := newStore(t, primary, cfg)

	rng := rand.New(rand.NewSource(7))
	ts := stream(rng, 1500, plainAccounts, 50*time.Minute, 3000_00)
	c := newCollector()
	c.apply(t, s, ts, 40)
	c.check(t, reference(ts, defaultCfg))

	ctx := context.Background()
	more := stream(rng, 20, plainAccounts, 50*time.Minute, 3000_00)
	for i := range more {
		more[i].ID = "more-" + more[i].ID
	}
	// The redelivery goes to another instance, on a connection whose last
	// write the replica confirmed before it froze.
	other := redis.NewClient(&redis.Options{Addr: primary.Options().Addr, PoolSize: 1})
	defer other.Close()
	if err := other.Set(ctx, "warm", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := other.Do(ctx, "WAIT", 1, 1000).Int(); n != 1 || err != nil {
		t.Fatalf("WAIT before the freeze: %d %v", n, err)
	}
	s2, err := window.New(other, cfg)
	if err != nil {
		t.Fatal(err)
	}
	slept := make(chan error, 1)
	go func() { slept <- replica.Do(ctx, "DEBUG", "SLEEP", "2").Err() }()
	time.Sleep(200 * time.Millisecond) // the replica is asleep
	_, err = s.Apply(ctx, more)
	var re *window.ReplicaError
	if !errors.As(err, &re) || re.Got != 0 || re.Want != 1 {
		t.Fatalf("apply with a frozen replica: %v, want a ReplicaError 0 of 1", err)
	}
	if _, err := s2.Apply(ctx, more); !errors.As(err, &re) {
		t.Fatalf("redelivery (duplicates only) with a frozen replica: %v, want a ReplicaError", err)
	}
	if err := <-slept; err != nil {
		t.Fatal(err)
	}
	out, err := s.Apply(ctx, more)
	if err != nil {
		t.Fatalf("after the replica woke: %v", err)
	}
	for i, o := range out {
		if o.Status != window.Duplicate {
			t.Fatalf("transfer %d: %v, want duplicate", i, o.Status)
		}
	}

	// More replicas than there are: refused within the timeout.
	cfg.MinReplicas = 2
	s3 := newStore(t, primary, cfg)
	start := time.Now()
	if _, err := s3.Apply(ctx, more[:1]); !errors.As(err, &re) || re.Got != 1 {
		t.Fatalf("2 of 1 replicas: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("WAIT took %v with a 200ms timeout", d)
	}
}
