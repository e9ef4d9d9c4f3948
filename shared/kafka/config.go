// Package kafka is the IBM/sarama plumbing shared by fintrans's Kafka users
// (the sink, the generator, the viewer and the detect consumer): one place
// that builds the *sarama.Config, creates topics and waits for a cluster to
// come up. The same code talks to a real cluster and to the embedded kfake
// cluster of the local run.
package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// DefaultVersion is the Kafka protocol version used when KAFKA_VERSION is
// empty (the same default as the config package). sarama does not negotiate
// versions: it sends the request versions that Kafka release supports, so it must not be
// newer than the brokers. 2.8.0 works against Kafka 2.8+ and against the
// embedded kfake cluster (every version from 1.0.0 to 4.0.0 was tested there;
// 2.4.0 and later rely on the OffsetFetch shim of the embedded package).
const DefaultVersion = "2.8.0"

// The environment variables of Security (read by the config package; named
// here in Config's errors).
const (
	EnvTLS           = "KAFKA_TLS"            // "true" enables TLS
	EnvCAFile        = "KAFKA_CA_FILE"        // PEM CA bundle; system roots when empty
	EnvSASLUser      = "KAFKA_SASL_USER"      // non-empty enables SASL
	EnvSASLPassword  = "KAFKA_SASL_PASSWORD"  // the SASL password
	EnvSASLMechanism = "KAFKA_SASL_MECHANISM" // PLAIN (default), SCRAM-SHA-256 or SCRAM-SHA-512
)

// Security is how clients reach the brokers: TLS and SASL.
type Security struct {
	TLS           bool   // KAFKA_TLS
	CAFile        string // KAFKA_CA_FILE: PEM CA bundle; system roots when empty
	SASLUser      string // KAFKA_SASL_USER: non-empty enables SASL
	SASLPassword  string // KAFKA_SASL_PASSWORD
	SASLMechanism string // KAFKA_SASL_MECHANISM: PLAIN (default), SCRAM-SHA-256 or SCRAM-SHA-512
}

// Config builds the *sarama.Config for a fintrans component.
//
// role names the component ("sink", "generator", "viewer", "detect"); it
// becomes the client ID "fintrans-<role>". version is a Kafka version such as
// "2.8.0" (the value of KAFKA_VERSION); empty means DefaultVersion.
//
// Producer: acks from all in-sync replicas, not idempotent, successes and
// errors returned (needed by SyncProducer), 5 retries with exponential
// backoff, no compression, and the hash partitioner so that the record key
// (the event's partitionkey) picks the partition.
//
// Consumer: start at the oldest offset when a group has no commit, errors
// returned on the Errors channel, sticky rebalancing, and auto-commit every
// second of the offsets the code has marked (MarkMessage is what the code
// controls; nothing is committed that was not marked).
//
// TLS and SASL are configured from sec; an invalid value is an error that
// names its variable.
func Config(role, version string, sec Security) (*sarama.Config, error) {
	cfg := sarama.NewConfig()

	if version == "" {
		version = DefaultVersion
	}
	v, err := sarama.ParseKafkaVersion(version)
	if err != nil {
		return nil, fmt.Errorf("KAFKA_VERSION %q: %w", version, err)
	}
	cfg.Version = v

	if role == "" {
		role = "client"
	}
	cfg.ClientID = "fintrans-" + role

	// Producer.
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = false
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Retry.BackoffFunc = backoff(100*time.Millisecond, 2*time.Second)
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	cfg.Producer.Compression = sarama.CompressionNone

	// Consumer and consumer group.
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = true
	cfg.Consumer.Offsets.AutoCommit.Interval = time.Second
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	cfg.Consumer.Return.Errors = true
	// Records buffered per partition ahead of the consumer (sarama's default
	// is 256): a consumer batch can then take up to CONSUMER_MAX_BATCH records
	// at once. 8,192 with batches of up to 8,192 gave warm pairs more
	// throughput under a backlog (make bench stage 4 at 100 accounts: 53,668
	// -> 64,964-67,395 tx/s) but alert latency spikes after it (paced phase
	// p99 58-102 ms in 5 of 8 runs, against 2-6 ms): not taken. The spikes
	// were sarama's resubscription (MaxProcessingTime, below); with it
	// fixed, 8,192 gave no gain on a slower machine (stage 4, 2 runs each:
	// 100 accounts 24,616 / 27,136 against 23,830 / 24,471 tx/s, 10,000
	// accounts 48,493 / 47,180 against 48,930 / 59,645).
	cfg.ChannelBufferSize = 1024
	// How long the consumer may go without taking a partition's next record
	// before sarama drops the partition from its broker's fetches and
	// subscribes it again, which it does in rounds 100 ms apart
	// (partitionConsumersBatchTimeout): sarama's 100 ms default is shorter than
	// one batch under a backlog (up to CONSUMER_MAX_BATCH records a partition,
	// 8 partitions sharing Redis: 100-300 ms), so every backlog ended with
	// the partitions' records waiting 100 ms in no fetch (make bench's paced
	// phase right after its backlog: alert latency 51-112 ms for its first
	// half second, p99 104-115 ms). A partition that really stops taking
	// records (its sink or Redis failing) still leaves the fetches of the
	// others within two of these.
	cfg.Consumer.MaxProcessingTime = time.Second

	// Metadata: retry with backoff while a broker is still coming up.
	cfg.Metadata.Retry.Max = 5
	cfg.Metadata.Retry.BackoffFunc = backoff(100*time.Millisecond, 2*time.Second)

	if err := configureSecurity(cfg, sec); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka config: %w", err)
	}
	return cfg, nil
}

// backoff returns an exponential backoff: base, 2*base, 4*base, ... capped at
// max. The signature matches sarama's Producer.Retry.BackoffFunc.
func backoff(base, maxWait time.Duration) func(retries, maxRetries int) time.Duration {
	return func(retries, _ int) time.Duration {
		d := base
		for i := 0; i < retries && d < maxWait; i++ {
			d *= 2
		}
		return min(d, maxWait)
	}
}

// configureSecurity applies the TLS and SASL settings.
func configureSecurity(cfg *sarama.Config, sec Security) error {
	tlsOn := sec.TLS
	caFile := sec.CAFile
	if caFile != "" && !tlsOn {
		return fmt.Errorf("%s is set but %s is not true", EnvCAFile, EnvTLS)
	}
	if tlsOn {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return fmt.Errorf("%s: %w", EnvCAFile, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("%s %s: no PEM certificate found", EnvCAFile, caFile)
			}
			tc.RootCAs = pool
		}
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = tc
	}

	user := sec.SASLUser
	if user == "" {
		return nil
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.User = user
	cfg.Net.SASL.Password = sec.SASLPassword
	if cfg.Net.SASL.Password == "" {
		return fmt.Errorf("%s is set but %s is empty", EnvSASLUser, EnvSASLPassword)
	}
	mech := strings.ToUpper(strings.TrimSpace(sec.SASLMechanism))
	switch mech {
	case "", sarama.SASLTypePlaintext:
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case sarama.SASLTypeSCRAMSHA256:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &XDGSCRAMClient{HashGeneratorFcn: SHA256} }
	case sarama.SASLTypeSCRAMSHA512:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &XDGSCRAMClient{HashGeneratorFcn: SHA512} }
	default:
		return fmt.Errorf("%s %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", EnvSASLMechanism, mech)
	}
	return nil
}
