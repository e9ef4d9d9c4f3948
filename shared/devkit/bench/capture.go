package bench

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
)

// capturer yields the exact commands the window store sends for a batch of
// transfers (EVALSHA, script hash, keys and ARGV as the store builds them),
// without sending them: the store runs on a client whose pipeline hook
// records the commands and stops there. The ceiling then replays them on the
// real connection, so it always measures the real script with the real
// arguments, whatever their layout.
type capturer struct {
	store *window.Store
	got   [][]any
}

var errCaptured = errors.New("captured, not sent")

// newCapturer makes a capturer; cluster makes the store plan its calls as
// on a Redis Cluster (one pair's transfers a call).
func newCapturer(cfg window.Config, cluster bool) (*capturer, error) {
	c := &capturer{}
	var rdb redis.UniversalClient
	if cluster {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, MaxRetries: -1})
	} else {
		rdb = redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	}
	rdb.AddHook(c)
	st, err := window.New(rdb, cfg)
	if err != nil {
		return nil, err
	}
	c.store = st
	return c, nil
}

// commands returns the store's commands for ts.
func (c *capturer) commands(ctx context.Context, ts []transfer.Transfer) ([][]any, error) {
	c.got = c.got[:0]
	if _, err := c.store.Apply(ctx, ts); err != nil && !errors.Is(err, errCaptured) {
		return nil, err
	}
	n := 0
	for _, args := range c.got {
		// EVALSHA sha numkeys keys... args...: two keys a transfer.
		if len(args) < 3 {
			return nil, errors.New("the window store sent an unexpected command")
		}
		k, _ := args[2].(int)
		n += k / 2
	}
	if n != len(ts) {
		return nil, fmt.Errorf("the window store's commands carry %d transfers, not %d", n, len(ts))
	}
	return c.got, nil
}

func (c *capturer) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, errCaptured
	}
}

func (c *capturer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		cmd.SetErr(errCaptured)
		return errCaptured
	}
}

func (c *capturer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.got = append(c.got, cmd.Args())
			cmd.SetErr(errCaptured)
		}
		return errCaptured
	}
}
