package window

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// AutoReplicas as Config.MinReplicas: wait for one replica on a Redis
// Cluster whose every primary has one, for none elsewhere.
const AutoReplicas = -1

// MinReplicas is the number of replicas Apply waits for: Config.MinReplicas,
// or what AutoReplicas resolved to; AutoReplicas while not yet resolved.
func (s *Store) MinReplicas() int { return int(s.minReplicas.Load()) }

func (s *Store) resolveReplicas(ctx context.Context) (int, error) {
	if n := s.minReplicas.Load(); n >= 0 {
		return int(n), nil
	}
	n, err := ResolveReplicas(ctx, s.rdb)
	if err != nil {
		return 0, fmt.Errorf("finding out whether Redis has replicas (REDIS_MIN_REPLICAS=auto): %w", err)
	}
	s.minReplicas.CompareAndSwap(AutoReplicas, int64(n))
	return int(s.minReplicas.Load()), nil
}

// ResolveReplicas is what AutoReplicas means for rdb: 1 on a Redis Cluster
// whose every slot range has a primary with at least one replica (CLUSTER
// SLOTS), 1 for a primary found through Sentinel that has a connected
// replica (INFO replication), 0 otherwise (a standalone server, or a cluster
// with a primary without replica, where waiting would refuse every batch).
func ResolveReplicas(ctx context.Context, rdb redis.UniversalClient) (int, error) {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		slots, err := c.ClusterSlots(ctx).Result()
		if err != nil {
			return 0, err
		}
		if len(slots) == 0 {
			return 0, nil
		}
		for _, r := range slots {
			if len(r.Nodes) < 2 {
				return 0, nil
			}
		}
		return 1, nil
	case *redis.Client:
		if !sentinel(c) {
			return 0, nil
		}
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
				if n, _ := strconv.Atoi(v); n > 0 {
					return 1, nil
				}
			}
		}
	}
	return 0, nil
}

// sentinel reports whether c finds its primary through Sentinel
// (redis.NewFailoverClient).
func sentinel(c *redis.Client) bool {
	return c.Options().Addr == "FailoverClient"
}

// assignedReplicas is how many replicas the cluster configuration gives a
// primary, and when that was read.
type assignedReplicas struct {
	n  int
	at time.Time
}

// replicasRefresh is how long a primary's replica count is reused.
const replicasRefresh = time.Second

// replicasOf is how many replicas a batch on cluster node waits for:
// minReplicas, or fewer when the cluster configuration assigns the node
// fewer replicas (CLUSTER NODES, failed replicas included). A replica that
// lags, is frozen or was dropped by its primary still counts: the batch
// waits for it and fails if it does not confirm. A primary that has none,
// such as a replica just promoted after its primary died, is not waited on:
// refusing every batch of its slots until a new replica joins would stop
// detect, and there is no second copy to wait for. When the old primary
// comes back (as a replica) it counts again.
func (s *Store) replicasOf(ctx context.Context, node *redis.Client, minReplicas int) int {
	addr := node.Options().Addr
	if v, ok := s.assigned.Load(addr); ok && time.Since(v.(assignedReplicas).at) < replicasRefresh {
		return min(minReplicas, v.(assignedReplicas).n)
	}
	text, err := node.ClusterNodes(ctx).Result()
	if err != nil {
		return minReplicas // unknown: the strict count
	}
	n := countReplicas(text)
	s.assigned.Store(addr, assignedReplicas{n: n, at: time.Now()})
	return min(minReplicas, n)
}

// countReplicas counts the nodes of CLUSTER NODES whose primary is the node
// that answered ("myself").
func countReplicas(nodes string) int {
	var me string
	lines := strings.Split(nodes, "\n")
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 2 && strings.Contains(","+f[2]+",", ",myself,") {
			me = f[0]
		}
	}
	n := 0
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 3 && me != "" && f[3] == me {
			n++
		}
	}
	return n
}
