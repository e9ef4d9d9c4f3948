package window

import (
	"context"
	"fmt"
	"strconv"
	"strings"

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
