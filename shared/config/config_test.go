package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/config"
)

func TestDefaults(t *testing.T) {
	c, err := config.FromMap(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Threshold != 10000_00 || c.WindowSize != 10*time.Minute || c.WindowSlide != 2*time.Minute ||
		c.AllowedLateness != time.Hour || c.FraudTopic != "fraud" || c.TransactionsTopic != "transactions" ||
		c.DLQTopic != "transactions.dlq" || c.Port != 8080 || c.EmbeddedRedis != "auto" ||
		c.RedisMinReplicas != -1 || c.RedisReplicaTimeout != time.Second || c.GeneratorProfile != "realistic" ||
		c.GeneratorAccounts != 1000 || c.GeneratorFraudRate != 0.01 {
		t.Fatalf("defaults: %+v", c)
	}
}

// GENERATOR_PROFILE=seed brings back the seed's generator defaults; explicit
// values win over either profile's.
func TestGeneratorProfile(t *testing.T) {
	c, err := config.FromMap(map[string]string{"GENERATOR_PROFILE": "Seed"})
	if err != nil {
		t.Fatal(err)
	}
	if c.GeneratorProfile != config.ProfileSeed || c.GeneratorAccounts != 10 || c.GeneratorFraudRate != 0.05 {
		t.Fatalf("seed profile: %+v", c)
	}
	c, err = config.FromMap(map[string]string{"GENERATOR_PROFILE": "seed", "GENERATOR_ACCOUNTS": "50", "GENERATOR_FRAUD_RATE": "0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.GeneratorAccounts != 50 || c.GeneratorFraudRate != 0.2 {
		t.Fatalf("explicit values under the seed profile: %+v", c)
	}
	if _, err := config.FromMap(map[string]string{"GENERATOR_PROFILE": "busy"}); err == nil || !strings.Contains(err.Error(), "GENERATOR_PROFILE") {
		t.Fatalf("unknown profile: err %v", err)
	}
}

func TestValues(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "redis-password")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.FromMap(map[string]string{
		"FRAUD_THRESHOLD": "2500.50", "WINDOW_SIZE": "1h", "WINDOW_SLIDE": "15m", "ALLOWED_LATENESS": "0s",
		"KAFKA_BROKERS": " a:9092, b:9092 ,", "REDIS_PASSWORD_FILE": secret, "LOG_FORMAT": "JSON",
		"EMBEDDED_REDIS":     "MiniRedis",
		"REDIS_MIN_REPLICAS": "2", "REDIS_REPLICA_TIMEOUT": "250ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Threshold != 2500_50 || c.WindowSize != time.Hour || c.WindowSlide != 15*time.Minute || c.AllowedLateness != 0 ||
		len(c.KafkaBrokers) != 2 || c.KafkaBrokers[1] != "b:9092" || c.RedisPassword != "s3cret" || c.LogFormat != "json" ||
		c.EmbeddedRedis != "miniredis" || c.RedisMinReplicas != 2 || c.RedisReplicaTimeout != 250*time.Millisecond {
		t.Fatalf("%+v", c)
	}
}

func TestInvalidValuesNameTheVariable(t *testing.T) {
	cases := map[string]map[string]string{
		"FRAUD_THRESHOLD":        {"FRAUD_THRESHOLD": "ten"},
		"WINDOW_SIZE":            {"WINDOW_SIZE": "10"},
		"WINDOW_SLIDE":           {"WINDOW_SLIDE": "20m"},
		"ALLOWED_LATENESS":       {"ALLOWED_LATENESS": "-1h"},
		"ALERT_MAX_TRANSACTIONS": {"ALERT_MAX_TRANSACTIONS": "-3"},
		"STATE_TTL":              {"STATE_TTL": "30m"},
		"PORT":                   {"PORT": "70000"},
		"LOG_FORMAT":             {"LOG_FORMAT": "xml"},
		"REDIS_CLUSTER":          {"REDIS_CLUSTER": "maybe"},
		"REDIS_MIN_REPLICAS":     {"REDIS_MIN_REPLICAS": "one"},
		"REDIS_REPLICA_TIMEOUT":  {"REDIS_REPLICA_TIMEOUT": "5s"},
		"REDIS_PASSWORD_FILE":    {"REDIS_PASSWORD_FILE": "/nonexistent/secret"},
		"GENERATOR_FRAUD_RATE":   {"GENERATOR_FRAUD_RATE": "1.5"},
		"GENERATOR_MIN_AMOUNT":   {"GENERATOR_MIN_AMOUNT": "500", "GENERATOR_MAX_AMOUNT": "100"},
		"GENERATOR_FORMAT":       {"GENERATOR_FORMAT": "csv"},
		"EMBEDDED_REDIS":         {"EMBEDDED_REDIS": "keydb"},
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := config.FromMap(env)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("error %v does not name %s", err, name)
			}
		})
	}
}

func TestClockSkewTimeoutsAndViewerToken(t *testing.T) {
	c, err := config.FromMap(nil)
	if err != nil || c.MaxClockSkew != 5*time.Minute || c.HTTPReadHeaderTimeout != 10*time.Second || c.HTTPReadTimeout != 30*time.Second ||
		c.HTTPWriteTimeout != 60*time.Second || c.HTTPIdleTimeout != 2*time.Minute || c.ViewerToken != "" {
		t.Fatalf("defaults: %v %+v", err, c)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "viewer-token")
	if err := os.WriteFile(file, []byte("tok3n\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = config.FromMap(map[string]string{"MAX_CLOCK_SKEW": "30s", "HTTP_READ_HEADER_TIMEOUT": "2s", "HTTP_READ_TIMEOUT": "5s",
		"HTTP_WRITE_TIMEOUT": "7s", "HTTP_IDLE_TIMEOUT": "9s", "VIEWER_TOKEN_FILE": file})
	if err != nil || c.MaxClockSkew != 30*time.Second || c.HTTPReadHeaderTimeout != 2*time.Second || c.HTTPReadTimeout != 5*time.Second ||
		c.HTTPWriteTimeout != 7*time.Second || c.HTTPIdleTimeout != 9*time.Second || c.ViewerToken != "tok3n" {
		t.Fatalf("values: %v %+v", err, c)
	}
	if c, err = config.FromMap(map[string]string{"VIEWER_TOKEN": "abc"}); err != nil || c.ViewerToken != "abc" {
		t.Fatalf("VIEWER_TOKEN: %v %q", err, c.ViewerToken)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string]map[string]string{
		"MAX_CLOCK_SKEW":           {"MAX_CLOCK_SKEW": "0s"},
		"HTTP_READ_TIMEOUT":        {"HTTP_READ_TIMEOUT": "soon"},
		"HTTP_READ_HEADER_TIMEOUT": {"HTTP_READ_HEADER_TIMEOUT": "1m", "HTTP_READ_TIMEOUT": "30s"},
		"VIEWER_TOKEN_FILE":        {"VIEWER_TOKEN_FILE": filepath.Join(dir, "missing")},
		"VIEWER_TOKEN_FILE ":       {"VIEWER_TOKEN_FILE": empty},
		"VIEWER_TOKEN_FILE  ":      {"VIEWER_TOKEN_FILE": file, "VIEWER_TOKEN": "abc"},
		"VIEWER_TOKEN":             {"VIEWER_TOKEN": config.ViewerTokenPlaceholder},
	} {
		_, err := config.FromMap(env)
		if err == nil || !strings.Contains(err.Error(), strings.TrimSpace(name)) {
			t.Errorf("%v: error %v does not name %s", env, err, strings.TrimSpace(name))
		}
		if err != nil && strings.Contains(err.Error(), "tok3n") {
			t.Errorf("the token appears in an error: %v", err)
		}
	}
}

func TestRules(t *testing.T) {
	// Without RULES_FILE: the seed's one rule from the variables.
	c, err := config.FromMap(map[string]string{"FRAUD_THRESHOLD": "2500.50", "WINDOW_SIZE": "1h", "WINDOW_SLIDE": "15m"})
	if err != nil {
		t.Fatal(err)
	}
	set, err := c.Rules()
	if err != nil || len(set.Rules) != 1 || c.RulesReloadInterval != 2*time.Second {
		t.Fatalf("%v %+v", err, set)
	}
	if r := set.Rules[0]; r.ID != "structuring" || r.GroupBy != "pair" || r.Aggregate != "sum" || r.Threshold != 2500_50 ||
		r.Window != time.Hour || r.Slide != 15*time.Minute || r.Lateness != time.Hour || r.MaxTransactions != 50 || !r.Enabled {
		t.Fatalf("default rule %+v", r)
	}

	// RULES_FILE: the file, whose rules default to the variables.
	dir := t.TempDir()
	file := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(file, []byte("rules:\n  - {id: fan-in, groupBy: to, aggregate: count, threshold: 20, window: 30m, slide: 10m}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = config.FromMap(map[string]string{"RULES_FILE": file, "RULES_RELOAD_INTERVAL": "500ms", "ALERT_MAX_TRANSACTIONS": "7"})
	if err != nil {
		t.Fatal(err)
	}
	if set, err = c.Rules(); err != nil || len(set.Rules) != 1 || set.Rules[0].ID != "fan-in" || set.Rules[0].MaxTransactions != 7 ||
		c.RulesReloadInterval != 500*time.Millisecond || set.Source != file {
		t.Fatalf("%v %+v", err, set)
	}

	// A bad file names RULES_FILE, the rule and the field.
	if err := os.WriteFile(file, []byte("rules:\n  - {id: fan-in, groupBy: everyone, aggregate: count, threshold: 20, window: 30m, slide: 10m}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rules(); err == nil || !strings.Contains(err.Error(), "RULES_FILE "+file) ||
		!strings.Contains(err.Error(), `rule "fan-in"`) || !strings.Contains(err.Error(), "groupBy") {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := config.FromMap(map[string]string{"RULES_RELOAD_INTERVAL": "1ms"}); err == nil || !strings.Contains(err.Error(), "RULES_RELOAD_INTERVAL") {
		t.Fatalf("RULES_RELOAD_INTERVAL 1ms: %v", err)
	}
}
