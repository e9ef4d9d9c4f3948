// Package config reads fintrans's configuration from environment variables.
// Every mode (OpenFaaS, Knative, the local binary) uses the same names; an
// invalid value is an error that names the variable.
package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fintrans/fintrans/shared/generator"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/rules"
	"github.com/fintrans/fintrans/shared/server"
	"github.com/fintrans/fintrans/shared/window"
)

// Config is the whole configuration. Zero values are never used: Load fills
// every field with its default first.
type Config struct {
	// Redis
	RedisURL          string // REDIS_URL; empty means "embedded" where a binary supports it
	RedisPassword     string // REDIS_PASSWORD or the file named by REDIS_PASSWORD_FILE
	RedisCAFile       string // REDIS_CA_FILE: PEM CA for rediss:// URLs
	RedisCluster      bool   // REDIS_CLUSTER: force cluster mode for a single seed address
	RedisPoolSize     int    // REDIS_POOL_SIZE (0: go-redis default)
	RedisPasswordFrom string // where the password came from (for logs; never the password)
	// EMBEDDED_REDIS: what `fintrans run` and `fintrans replay` start when
	// REDIS_URL is unset: auto (a redis-server from PATH if there is one,
	// else miniredis), redis-server or miniredis
	EmbeddedRedis string
	// REDIS_MIN_REPLICAS: replicas that must confirm a batch's writes before
	// detect acknowledges it; -1 (auto, the default): 1 on a Redis Cluster
	// (or behind Sentinel) whose primaries have replicas, else 0.
	RedisMinReplicas    int
	RedisReplicaTimeout time.Duration // REDIS_REPLICA_TIMEOUT (1s): how long detect waits for them

	// Detection
	Threshold            money.Cents   // FRAUD_THRESHOLD (10000)
	WindowSize           time.Duration // WINDOW_SIZE (10m)
	WindowSlide          time.Duration // WINDOW_SLIDE (2m)
	AllowedLateness      time.Duration // ALLOWED_LATENESS (1h)
	AlertMaxTransactions int           // ALERT_MAX_TRANSACTIONS (50)
	StateTTL             time.Duration // STATE_TTL (24h): idle time after which a pair's state expires
	MaxClockSkew         time.Duration // MAX_CLOCK_SKEW (5m): transfers dated further ahead of this clock are invalid
	// RULES_FILE: the rule set (YAML, `rules:` then a list); empty: the one
	// rule "structuring" from FRAUD_THRESHOLD, WINDOW_SIZE and WINDOW_SLIDE
	// (the values above are also the defaults of a rule's lateness and
	// maxTransactions)
	RulesFile           string
	RulesReloadInterval time.Duration // RULES_RELOAD_INTERVAL (2s): how often RULES_FILE is read for changes

	// Sinks and Kafka
	KSink             string         // K_SINK: Knative sink URL for alerts (detect) or transfers (generator)
	KafkaBrokers      []string       // KAFKA_BROKERS, comma-separated
	KafkaVersion      string         // KAFKA_VERSION (sarama version string, default 2.8.0)
	KafkaSecurity     kafka.Security // KAFKA_TLS, KAFKA_CA_FILE, KAFKA_SASL_USER, KAFKA_SASL_PASSWORD, KAFKA_SASL_MECHANISM
	TransactionsTopic string         // TRANSACTIONS_TOPIC (transactions)
	FraudTopic        string         // FRAUD_TOPIC (fraud)
	DLQTopic          string         // DLQ_TOPIC (transactions.dlq)
	ConsumerGroup     string         // CONSUMER_GROUP (fintrans-detect)
	ViewerGroup       string         // VIEWER_GROUP (fintrans-viewer)
	// CONSUMER_MAX_BATCH (1000): records a consumer micro-batch takes at
	// most (all that wait, up to this and up to the 1,024 buffered a
	// partition); a live stream's batches stay as small as what has arrived.
	ConsumerMaxBatch int

	// HTTP
	Port         int   // PORT (8080)
	MaxBodyBytes int64 // MAX_BODY_BYTES (1 MiB)
	MaxBatch     int   // MAX_BATCH (1000)

	// HTTP server time limits (every server fintrans starts)
	HTTPReadHeaderTimeout time.Duration // HTTP_READ_HEADER_TIMEOUT (10s): a request's headers
	HTTPReadTimeout       time.Duration // HTTP_READ_TIMEOUT (30s): a whole request, body included
	HTTPWriteTimeout      time.Duration // HTTP_WRITE_TIMEOUT (60s): from the end of the headers to the end of the answer
	HTTPIdleTimeout       time.Duration // HTTP_IDLE_TIMEOUT (2m): an idle keep-alive connection

	// Viewer
	ViewerToken string // VIEWER_TOKEN or the file named by VIEWER_TOKEN_FILE: required to read alert data (empty: open)

	// Logs
	LogFormat string // LOG_FORMAT: text or json
	LogLevel  string // LOG_LEVEL: debug, info, warn, error

	// Generator
	GeneratorProfile   string      // GENERATOR_PROFILE: realistic (default) or seed; sets the defaults of the two below
	GeneratorAccounts  int         // GENERATOR_ACCOUNTS (realistic 1000, seed 10)
	GeneratorTransfers int         // GENERATOR_TRANSFERS per tick (100)
	GeneratorMinAmount money.Cents // GENERATOR_MIN_AMOUNT (1)
	GeneratorMaxAmount money.Cents // GENERATOR_MAX_AMOUNT (10000)
	GeneratorFraudRate float64     // GENERATOR_FRAUD_RATE: share of transfers that belong to injected structuring episodes (realistic 0.01, seed 0.05)
	GeneratorFormat    string      // GENERATOR_FORMAT: cloudevents or line

	// Local schedules (robfig/cron specs) for `fintrans run`
	GeneratorSchedule string // GENERATOR_SCHEDULE (@every 1s)
	ViewerSchedule    string // VIEWER_SCHEDULE (@every 2s)
}

// The generator's traffic profiles (GENERATOR_PROFILE) and the defaults each
// gives GENERATOR_ACCOUNTS and GENERATOR_FRAUD_RATE.
const (
	// ProfileRealistic: accounts paying a few regular payees everyday
	// amounts (most small, rare large ones), plus injected structuring.
	ProfileRealistic = generator.ProfileRealistic
	// ProfileSeed: the seed's generator (uniform pairs and amounts).
	ProfileSeed = generator.ProfileSeed

	RealisticAccounts  = 1000
	RealisticFraudRate = 0.01
	SeedAccounts       = 10
	SeedFraudRate      = 0.05
)

// ViewerTokenPlaceholder is the token of the Secret in knative/: refused,
// so that the alert data is never served under a token anyone can read.
const ViewerTokenPlaceholder = "replace-me-with-a-random-token"

// Default returns the configuration with every default set.
func Default() Config {
	return Config{
		EmbeddedRedis:         "auto",
		RedisMinReplicas:      -1,
		RedisReplicaTimeout:   time.Second,
		Threshold:             money.Cents(10000_00),
		WindowSize:            10 * time.Minute,
		WindowSlide:           2 * time.Minute,
		AllowedLateness:       time.Hour,
		AlertMaxTransactions:  50,
		StateTTL:              24 * time.Hour,
		MaxClockSkew:          5 * time.Minute,
		RulesReloadInterval:   2 * time.Second,
		KafkaVersion:          "2.8.0",
		TransactionsTopic:     "transactions",
		FraudTopic:            "fraud",
		DLQTopic:              "transactions.dlq",
		ConsumerGroup:         "fintrans-detect",
		ViewerGroup:           "fintrans-viewer",
		Port:                  8080,
		MaxBodyBytes:          1 << 20,
		MaxBatch:              1000,
		ConsumerMaxBatch:      1000,
		HTTPReadHeaderTimeout: server.DefaultTimeouts.ReadHeader,
		HTTPReadTimeout:       server.DefaultTimeouts.Read,
		HTTPWriteTimeout:      server.DefaultTimeouts.Write,
		HTTPIdleTimeout:       server.DefaultTimeouts.Idle,
		LogFormat:             "text",
		LogLevel:              "info",
		GeneratorProfile:      ProfileRealistic,
		GeneratorAccounts:     RealisticAccounts,
		GeneratorTransfers:    100,
		GeneratorMinAmount:    money.Cents(1_00),
		GeneratorMaxAmount:    money.Cents(10000_00),
		GeneratorFraudRate:    RealisticFraudRate,
		GeneratorFormat:       "cloudevents",
		GeneratorSchedule:     "@every 1s",
		ViewerSchedule:        "@every 2s",
	}
}

// Load reads the process environment.
func Load() (Config, error) { return FromLookup(os.LookupEnv) }

// FromMap reads a map (for tests).
func FromMap(m map[string]string) (Config, error) {
	return FromLookup(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

// FromLookup reads configuration through a lookup function.
func FromLookup(lookup func(string) (string, bool)) (Config, error) {
	c := Default()
	r := reader{lookup: lookup}
	c.RedisURL = r.str("REDIS_URL", "")
	c.RedisCAFile = r.str("REDIS_CA_FILE", "")
	c.RedisCluster = r.boolean("REDIS_CLUSTER", false)
	c.RedisPoolSize = r.integer("REDIS_POOL_SIZE", 0, 0, 10000)
	c.EmbeddedRedis = r.oneOf("EMBEDDED_REDIS", c.EmbeddedRedis, "auto", "redis-server", "miniredis")
	if v := r.str("REDIS_MIN_REPLICAS", "auto"); !strings.EqualFold(v, "auto") {
		c.RedisMinReplicas = r.integer("REDIS_MIN_REPLICAS", 0, 0, 16)
	}
	c.RedisReplicaTimeout = r.duration("REDIS_REPLICA_TIMEOUT", c.RedisReplicaTimeout)
	if c.RedisReplicaTimeout > 2*time.Second || c.RedisReplicaTimeout < time.Millisecond {
		r.fail("REDIS_REPLICA_TIMEOUT", fmt.Sprintf("%s is not from 1ms to 2s (detect reads the answer within go-redis's 3s read timeout)", c.RedisReplicaTimeout))
	}
	c.RedisPassword = r.str("REDIS_PASSWORD", "")
	if c.RedisPassword != "" {
		c.RedisPasswordFrom = "REDIS_PASSWORD"
	}
	if f := r.str("REDIS_PASSWORD_FILE", ""); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			r.fail("REDIS_PASSWORD_FILE", fmt.Sprintf("cannot read %s: %v", f, err))
		} else {
			c.RedisPassword = strings.TrimRight(string(b), "\r\n")
			c.RedisPasswordFrom = "REDIS_PASSWORD_FILE"
		}
	}

	c.Threshold = r.cents("FRAUD_THRESHOLD", c.Threshold)
	c.WindowSize = r.duration("WINDOW_SIZE", c.WindowSize)
	c.WindowSlide = r.duration("WINDOW_SLIDE", c.WindowSlide)
	c.AllowedLateness = r.durationZeroOK("ALLOWED_LATENESS", c.AllowedLateness)
	c.AlertMaxTransactions = r.integer("ALERT_MAX_TRANSACTIONS", c.AlertMaxTransactions, 0, 10000)
	c.StateTTL = r.duration("STATE_TTL", c.StateTTL)
	c.MaxClockSkew = r.duration("MAX_CLOCK_SKEW", c.MaxClockSkew)
	c.RulesFile = r.str("RULES_FILE", "")
	c.RulesReloadInterval = r.duration("RULES_RELOAD_INTERVAL", c.RulesReloadInterval)
	if c.RulesReloadInterval < 100*time.Millisecond || c.RulesReloadInterval > time.Hour {
		r.fail("RULES_RELOAD_INTERVAL", fmt.Sprintf("%s is not from 100ms to 1h", c.RulesReloadInterval))
	}

	c.KSink = r.str("K_SINK", "")
	if b := r.str("KAFKA_BROKERS", ""); b != "" {
		for _, p := range strings.Split(b, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.KafkaBrokers = append(c.KafkaBrokers, p)
			}
		}
	}
	c.KafkaVersion = r.str("KAFKA_VERSION", c.KafkaVersion)
	c.KafkaSecurity = kafka.Security{
		TLS:           r.boolean(kafka.EnvTLS, false),
		CAFile:        r.str(kafka.EnvCAFile, ""),
		SASLUser:      r.str(kafka.EnvSASLUser, ""),
		SASLPassword:  r.raw(kafka.EnvSASLPassword),
		SASLMechanism: r.str(kafka.EnvSASLMechanism, ""),
	}
	c.TransactionsTopic = r.str("TRANSACTIONS_TOPIC", c.TransactionsTopic)
	c.FraudTopic = r.str("FRAUD_TOPIC", c.FraudTopic)
	c.DLQTopic = r.str("DLQ_TOPIC", c.DLQTopic)
	c.ConsumerGroup = r.str("CONSUMER_GROUP", c.ConsumerGroup)
	c.ViewerGroup = r.str("VIEWER_GROUP", c.ViewerGroup)
	c.ConsumerMaxBatch = r.integer("CONSUMER_MAX_BATCH", c.ConsumerMaxBatch, 1, 100000)

	c.Port = r.integer("PORT", c.Port, 1, 65535)
	c.MaxBodyBytes = int64(r.integer("MAX_BODY_BYTES", int(c.MaxBodyBytes), 1024, 1<<30))
	c.MaxBatch = r.integer("MAX_BATCH", c.MaxBatch, 1, 100000)
	c.HTTPReadHeaderTimeout = r.duration("HTTP_READ_HEADER_TIMEOUT", c.HTTPReadHeaderTimeout)
	c.HTTPReadTimeout = r.duration("HTTP_READ_TIMEOUT", c.HTTPReadTimeout)
	c.HTTPWriteTimeout = r.duration("HTTP_WRITE_TIMEOUT", c.HTTPWriteTimeout)
	c.HTTPIdleTimeout = r.duration("HTTP_IDLE_TIMEOUT", c.HTTPIdleTimeout)

	token := r.str("VIEWER_TOKEN", "")
	if f := r.str("VIEWER_TOKEN_FILE", ""); f != "" {
		b, err := os.ReadFile(f)
		switch {
		case err != nil:
			r.fail("VIEWER_TOKEN_FILE", fmt.Sprintf("cannot read %s: %v", f, err))
		case token != "":
			r.fail("VIEWER_TOKEN_FILE", "set VIEWER_TOKEN or VIEWER_TOKEN_FILE, not both")
		default:
			token = strings.TrimRight(string(b), "\r\n")
			if token == "" {
				r.fail("VIEWER_TOKEN_FILE", fmt.Sprintf("%s is empty: an empty token would leave the viewer open", f))
			}
		}
	}
	if token == ViewerTokenPlaceholder {
		r.fail("VIEWER_TOKEN", "is the placeholder of knative/11-viewer-token.yaml: create the secret viewer-token with a random token")
	}
	c.ViewerToken = token
	c.LogFormat = r.oneOf("LOG_FORMAT", c.LogFormat, "text", "json")
	c.LogLevel = r.oneOf("LOG_LEVEL", c.LogLevel, "debug", "info", "warn", "error")

	c.GeneratorProfile = r.oneOf("GENERATOR_PROFILE", c.GeneratorProfile, ProfileRealistic, ProfileSeed)
	if c.GeneratorProfile == ProfileSeed {
		c.GeneratorAccounts, c.GeneratorFraudRate = SeedAccounts, SeedFraudRate
	}
	c.GeneratorAccounts = r.integer("GENERATOR_ACCOUNTS", c.GeneratorAccounts, 2, 1_000_000_000)
	c.GeneratorTransfers = r.integer("GENERATOR_TRANSFERS", c.GeneratorTransfers, 1, 1_000_000)
	c.GeneratorMinAmount = r.cents("GENERATOR_MIN_AMOUNT", c.GeneratorMinAmount)
	c.GeneratorMaxAmount = r.cents("GENERATOR_MAX_AMOUNT", c.GeneratorMaxAmount)
	c.GeneratorFraudRate = r.fraction("GENERATOR_FRAUD_RATE", c.GeneratorFraudRate)
	c.GeneratorFormat = r.oneOf("GENERATOR_FORMAT", c.GeneratorFormat, "cloudevents", "line")
	c.GeneratorSchedule = r.str("GENERATOR_SCHEDULE", c.GeneratorSchedule)
	c.ViewerSchedule = r.str("VIEWER_SCHEDULE", c.ViewerSchedule)

	// Relations between values.
	if r.err == nil {
		var fe *window.FieldError
		if err := c.Window().Validate(); errors.As(err, &fe) {
			r.fail(windowVars[fe.Field], fe.Reason)
		}
		if c.HTTPReadHeaderTimeout > c.HTTPReadTimeout {
			r.fail("HTTP_READ_HEADER_TIMEOUT", fmt.Sprintf("%s is longer than HTTP_READ_TIMEOUT %s", c.HTTPReadHeaderTimeout, c.HTTPReadTimeout))
		}
		if c.GeneratorMinAmount > c.GeneratorMaxAmount {
			r.fail("GENERATOR_MIN_AMOUNT", "is greater than GENERATOR_MAX_AMOUNT")
		}
	}
	return c, r.err
}

// Generator is what the generator takes.
func (c Config) Generator() generator.Config {
	return generator.Config{Profile: c.GeneratorProfile, Accounts: c.GeneratorAccounts, Transfers: c.GeneratorTransfers,
		MinAmount: c.GeneratorMinAmount, MaxAmount: c.GeneratorMaxAmount, FraudRate: c.GeneratorFraudRate,
		Threshold: c.Threshold, WindowSize: c.WindowSize, WindowSlide: c.WindowSlide}
}

// HTTPTimeouts are the HTTP_* time limits every server takes.
func (c Config) HTTPTimeouts() server.Timeouts {
	return server.Timeouts{ReadHeader: c.HTTPReadHeaderTimeout, Read: c.HTTPReadTimeout,
		Write: c.HTTPWriteTimeout, Idle: c.HTTPIdleTimeout}
}

// Window is the window store's part of the configuration.
func (c Config) Window() window.Config {
	return window.Config{
		Threshold:       c.Threshold,
		Size:            c.WindowSize,
		Slide:           c.WindowSlide,
		Lateness:        c.AllowedLateness,
		MaxTransactions: c.AlertMaxTransactions,
		TTL:             c.StateTTL,
		MinReplicas:     c.RedisMinReplicas,
		ReplicaTimeout:  c.RedisReplicaTimeout,
	}
}

// RuleDefaults are what a rule of RULES_FILE that leaves a field out gets,
// and without RULES_FILE the one rule's values.
func (c Config) RuleDefaults() rules.Defaults {
	return rules.Defaults{Threshold: c.Threshold, Window: c.WindowSize, Slide: c.WindowSlide,
		Lateness: c.AllowedLateness, MaxTransactions: c.AlertMaxTransactions}
}

// Rules reads the rule set in force at start: RULES_FILE, or without it the
// one rule from the variables. Errors name RULES_FILE (or the variables).
func (c Config) Rules() (rules.Set, error) {
	if c.RulesFile == "" {
		return rules.Default(c.RuleDefaults())
	}
	return rules.Load(c.RulesFile, c.RuleDefaults())
}

// windowVars names the variable of each field of window.Config.
var windowVars = map[string]string{"Threshold": "FRAUD_THRESHOLD", "Size": "WINDOW_SIZE", "Slide": "WINDOW_SLIDE",
	"Lateness": "ALLOWED_LATENESS", "MaxTransactions": "ALERT_MAX_TRANSACTIONS", "TTL": "STATE_TTL",
	"MinReplicas": "REDIS_MIN_REPLICAS", "ReplicaTimeout": "REDIS_REPLICA_TIMEOUT"}

type reader struct {
	lookup func(string) (string, bool)
	err    error
}

func (r *reader) fail(name, msg string) {
	r.err = errors.Join(r.err, fmt.Errorf("%s: %s", name, msg))
}

func (r *reader) get(name string) (string, bool) {
	v, ok := r.lookup(name)
	if !ok {
		return "", false
	}
	v = strings.TrimSpace(v)
	return v, v != ""
}

// raw is a value as it is, spaces included (a password).
func (r *reader) raw(name string) string {
	v, _ := r.lookup(name)
	return v
}

func (r *reader) str(name, def string) string {
	if v, ok := r.get(name); ok {
		return v
	}
	return def
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	r.fail(name, fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", ")))
	return def
}

func (r *reader) boolean(name string, def bool) bool {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, fmt.Sprintf("%q is not a boolean (true or false)", v))
		return def
	}
	return b
}

func (r *reader) integer(name string, def, min, max int) int {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		r.fail(name, fmt.Sprintf("%q is not a whole number from %d to %d", v, min, max))
		return def
	}
	return n
}

func (r *reader) fraction(name string, def float64) float64 {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		r.fail(name, fmt.Sprintf("%q is not a number from 0 to 1", v))
		return def
	}
	return f
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	d := r.durationZeroOK(name, def)
	if d <= 0 {
		r.fail(name, "must be longer than zero")
		return def
	}
	return d
}

func (r *reader) durationZeroOK(name string, def time.Duration) time.Duration {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		r.fail(name, fmt.Sprintf("%q is not a duration such as 90s, 10m or 1h", v))
		return def
	}
	return d
}

func (r *reader) cents(name string, def money.Cents) money.Cents {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	c, err := money.Parse(v)
	if err != nil {
		r.fail(name, err.Error())
		return def
	}
	return c
}
