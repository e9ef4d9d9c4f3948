package redisconn

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/metrics"
)

// NewClusterClient is redis.NewClusterClient with the cluster state reloaded
// as soon as a node fails, not only on go-redis's timer.
//
// go-redis reloads the slot map on its timer (ClusterStateReloadInterval,
// 60 s since v9.22) and on MOVED answers to single commands. After a
// primary dies the client keeps dialling the dead address: connection
// refused or timed out is no MOVED, so the promoted replica stays unknown
// until the timer fires (go-redis issue 3979, open at v9.22.0). Every node
// client here carries a hook that asks for a reload (ClusterClient.ReloadState,
// which coalesces concurrent requests and reloads at most every 200 ms) when
// a dial, a command or a pipeline fails with a network error or with MOVED,
// ASK, CLUSTERDOWN, TRYAGAIN, READONLY or LOADING: the next request after the
// promotion then goes to the new primary.
func NewClusterClient(opts *redis.ClusterOptions) *redis.ClusterClient {
	cc := redis.NewClusterClient(opts)
	r := &reloader{cc: cc}
	cc.AddHook(r) // commands routed by the cluster client itself
	cc.OnNewNode(func(node *redis.Client) { node.AddHook(r) })
	return cc
}

// reloader is the hook that reloads the cluster state on topology errors.
type reloader struct {
	cc   *redis.ClusterClient
	last atomic.Int64 // unix nanoseconds of the last reload asked for
}

// minReloadGap spaces the reloads one failing node can cause: a reload
// costs one CLUSTER SLOTS, and go-redis coalesces the rest.
const minReloadGap = 100 * time.Millisecond

func (r *reloader) check(err error) {
	if !TopologyError(err) {
		return
	}
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(minReloadGap) || !r.last.CompareAndSwap(last, now) {
		return
	}
	metrics.RedisReloads.Inc()
	r.cc.ReloadState(context.Background())
}

func (r *reloader) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil && ctx.Err() == nil {
			r.check(err)
		}
		return conn, err
	}
}

func (r *reloader) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && ctx.Err() == nil {
			r.check(err)
		}
		return err
	}
}

func (r *reloader) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if ctx.Err() == nil {
			if err != nil {
				r.check(err)
			}
			for _, c := range cmds {
				if cerr := c.Err(); cerr != nil && TopologyError(cerr) {
					r.check(cerr)
					break
				}
			}
		}
		return err
	}
}

// TopologyError reports whether err says that the node asked is not (or no
// longer) the one to ask: a network error (refused, reset, timed out, closed)
// or a MOVED, ASK, CLUSTERDOWN, TRYAGAIN, READONLY, LOADING or MASTERDOWN
// answer. Script errors and other answers of a healthy node are not.
func TopologyError(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if _, ok := redis.IsMovedError(err); ok {
		return true
	}
	if _, ok := redis.IsAskError(err); ok {
		return true
	}
	if redis.IsClusterDownError(err) || redis.IsTryAgainError(err) || redis.IsReadOnlyError(err) ||
		redis.IsLoadingError(err) || redis.IsMasterDownError(err) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, redis.ErrClosed) {
		return true
	}
	var re redis.Error
	if errors.As(err, &re) {
		return false // any other answer of a live node
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "EOF", "i/o timeout", "no route to host"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
