// Package metrics holds fintrans's Prometheus metrics (all named fintrans_*),
// registered on the default registry that /metrics serves.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	// Transfers counts the transfers detect handled, by result: counted,
	// duplicate, late, invalid.
	Transfers = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "fintrans_transfers_total", Help: "Transfers handled by detect, by result.",
	}, []string{"result"})
	// Alerts counts fraud alerts accepted by the sink (re-fired ones too),
	// by rule.
	Alerts = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "fintrans_alerts_total", Help: "Fraud alerts accepted by the sink, repeats included, by rule.",
	}, []string{"rule"})
	// RuleLate counts, by rule, the transfers a rule refused as late for
	// their group (behind its newest time by more than the rule's
	// lateness), also when another rule counted them.
	RuleLate = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "fintrans_rule_late_total", Help: "Transfers a rule refused as later than its lateness for their group, by rule.",
	}, []string{"rule"})
	// Late counts transfers refused as late.
	Late = promauto.NewCounter(prometheus.CounterOpts{
		Name: "fintrans_late_total", Help: "Transfers refused as later than the allowed lateness.",
	})
	// Duplicates counts redeliveries recognised.
	Duplicates = promauto.NewCounter(prometheus.CounterOpts{
		Name: "fintrans_duplicates_total", Help: "Transfers delivered again and counted once.",
	})
	// DeadLettered counts records sent to the dead-letter topic.
	DeadLettered = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "fintrans_dead_lettered_total", Help: "Records sent to the dead-letter topic, by reason.",
	}, []string{"reason"})
	// RulesReloadErrors counts changes of RULES_FILE that were refused.
	RulesReloadErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "fintrans_rules_reload_errors_total", Help: "Changes of RULES_FILE refused (the previous rules stay in force).",
	})
	// RulesInfo is 1 for the version and source of the rule set in force.
	RulesInfo = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fintrans_rules_info", Help: "The rule set in force: 1 for its version and source.",
	}, []string{"version", "source"})
	// RulesEnabled is the number of enabled rules in force.
	RulesEnabled = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "fintrans_rules_enabled", Help: "Enabled rules in the set in force.",
	})
	// RedisSeconds times window-script pipelines.
	RedisSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "fintrans_redis_seconds", Help: "Time of one window-script pipeline.",
		Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
	})
	// SinkSeconds times alert deliveries.
	SinkSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "fintrans_sink_seconds", Help: "Time to have alerts accepted by the sink.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	// Generated counts transfers produced by the generator.
	Generated = promauto.NewCounter(prometheus.CounterOpts{
		Name: "fintrans_generated_total", Help: "Transfers produced by the generator.",
	})
	// Printed counts alerts printed by the viewer (each once).
	Printed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "fintrans_viewer_printed_total", Help: "Alerts printed by the viewer.",
	})
	// RedisReloads counts the Redis Cluster state reloads detect asked for
	// because a node failed or answered MOVED, CLUSTERDOWN and the like.
	RedisReloads = promauto.NewCounter(prometheus.CounterOpts{
		Name: "fintrans_redis_cluster_reloads_total", Help: "Redis Cluster slot-map reloads caused by node errors (failovers, resharding).",
	})
	// ReplicaShortfalls counts batches whose writes did not reach
	// REDIS_MIN_REPLICAS replicas within REDIS_REPLICA_TIMEOUT (answered 503 or
	// left unmarked, so the transport redelivers them).
	ReplicaShortfalls = promauto.NewCounter(prometheus.CounterOpts{
		Name: "fintrans_redis_replica_shortfalls_total", Help: "Batches not acknowledged because too few Redis replicas confirmed their writes in time.",
	})
	// Errors counts server-side faults by component.
	Errors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "fintrans_errors_total", Help: "Server-side faults (Redis, sink, Kafka), by component.",
	}, []string{"component"})
)

// Every known label value starts at 0, so that each series is listed on
// /metrics from the start (rate() and alerts need it before the first event).
func init() {
	for _, r := range []string{"counted", "duplicate", "late", "invalid"} {
		Transfers.WithLabelValues(r)
	}
	for _, r := range []string{"invalid", "late"} {
		DeadLettered.WithLabelValues(r)
	}
	for _, c := range []string{"redis", "sink", "kafka"} {
		Errors.WithLabelValues(c)
	}
}
