// Package embeddedkafka is the in-process Kafka of fintrans's local run and
// tests: franz-go's kfake, which speaks the real Kafka wire protocol, on
// 127.0.0.1 only. Production talks to real clusters through the same sarama
// client code. It lives in the devkit module because kfake needs a newer Go
// than the functions' builds (see devkit/go.mod).
package embeddedkafka

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka is an in-process Kafka cluster (kfake) listening on 127.0.0.1.
//
// Clients reach it through the real Kafka protocol at Brokers; fintrans uses
// IBM/sarama, configured by the kafka package, exactly as against a real
// cluster. Classic consumer groups (JoinGroup/SyncGroup/Heartbeat/
// OffsetCommit/OffsetFetch), CreateTopics and idempotent produce work with
// sarama without extra kfake options (tested for sarama Versions 1.0.0 to
// 4.0.0). Differences from a real broker: no initial rebalance delay, and
// OffsetFetch of a group that never joined or committed answers
// GROUP_ID_NOT_FOUND instead of offsets of -1.
//
// The cluster keeps its data in memory; it is lost on Close.
type Kafka struct {
	// Brokers are the host:port bootstrap addresses, one per broker.
	Brokers []string

	cluster *kfake.Cluster
}

// Options tunes StartWith. The zero value is what Start uses
// apart from Partitions: one broker on a free port.
type Options struct {
	// Brokers is the number of brokers (default 1). Ignored when Ports is
	// set: there is then one broker per port.
	Brokers int
	// Ports, when set, are fixed loopback ports to listen on (one broker
	// each), for example 9092 for tools that expect the usual address.
	Ports []int
	// Partitions is the partition count of each seeded topic (default 1).
	Partitions int32
	// MinSessionTimeout is the smallest consumer-group session timeout the
	// cluster accepts (kfake's default is 6s; sarama's default session
	// timeout is 10s, which fits). Zero keeps kfake's default.
	MinSessionTimeout time.Duration
}

// Start starts a one-broker in-process Kafka on a free loopback port
// with the given topics already created, each with partitions partitions.
func Start(partitions int32, topics ...string) (*Kafka, error) {
	return StartWith(Options{Partitions: partitions}, topics...)
}

// StartWith is Start with more control (broker count, fixed ports).
//
// Every connection goes through a small shim that makes kfake's OffsetFetch
// answers match a real broker's for sarama (see saramafix.go); everything
// else is kfake as is.
func StartWith(o Options, topics ...string) (*Kafka, error) {
	if o.Partitions < 1 {
		o.Partitions = 1
	}
	brokers := o.Brokers
	if brokers < 1 {
		brokers = 1
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(brokers), // overridden by Ports when given
		kfake.ClusterID("fintrans-embedded"),
		// CreateTopics with NumPartitions -1 and auto-created topics get
		// the same count as the seeded ones.
		kfake.DefaultNumPartitions(int(o.Partitions)),
		// Lets sarama's consumer groups work with Version >= 2.4.0; see
		// saramafix.go.
		kfake.ListenFn(listenWithOffsetFetchFix),
	}
	if len(o.Ports) > 0 {
		opts = append(opts, kfake.Ports(o.Ports...))
	}
	if o.MinSessionTimeout > 0 {
		opts = append(opts, kfake.GroupMinSessionTimeout(o.MinSessionTimeout))
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(o.Partitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		return nil, errors.New("embedded kafka: cluster has no listeners")
	}
	return &Kafka{Brokers: addrs, cluster: c}, nil
}

// Close stops the cluster and drops its data. It is safe to call more than
// once.
func (k *Kafka) Close() {
	if k == nil || k.cluster == nil {
		return
	}
	k.cluster.Close()
}
