package kafka_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/fintrans/fintrans/shared/kafka"
)

// TestVersionsAgainstEmbedded records which sarama protocol versions work
// against the embedded kfake cluster: keyed produce (plain and idempotent), a
// consumer group that commits, and a second session resuming from the
// commit.
func TestVersionsAgainstEmbedded(t *testing.T) {
	versions := []string{"1.0.0", sarama.DefaultVersion.String(), "2.4.0", "2.8.0", "3.6.0", sarama.MaxVersion.String()}
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			k := startKafka(t, 3, "transactions")
			cfg := mustConfig(t, "test", v)

			produce(t, k.Brokers, cfg, "transactions", 0, 20, 7)

			idem := mustConfig(t, "test", v)
			idem.Producer.Idempotent = true
			idem.Net.MaxOpenRequests = 1
			produce(t, k.Brokers, idem, "transactions", 20, 20, 7)

			first := consumeGroup(t, k.Brokers, cfg, "g", "transactions", 40, 10*time.Second)
			if first.total != 40 || len(first.values) != 40 {
				t.Fatalf("first session: %d messages, %d distinct, want 40", first.total, len(first.values))
			}
			produce(t, k.Brokers, cfg, "transactions", 40, 5, 7)
			second := consumeGroup(t, k.Brokers, cfg, "g", "transactions", 5, 10*time.Second)
			for val := range second.values {
				var i int
				if _, err := fmt.Sscanf(val, "v%d", &i); err != nil || i < 40 {
					t.Errorf("second session replayed %q", val)
				}
			}
			if second.total != 5 {
				t.Errorf("second session: %d messages, want 5", second.total)
			}
		})
	}
}

// TestSASLAgainstKfake checks the SASL settings Config derives from the
// environment, including the xdg-go/scram SCRAM client, against kfake's
// SASL support.
func TestSASLAgainstKfake(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c, err := kfake.NewCluster(
				kfake.NumBrokers(1),
				kfake.EnableSASL(),
				kfake.Superuser(mech, "fin", "s3cret=,pw"),
				kfake.SeedTopics(1, "transactions"),
			)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			brokers := c.ListenAddrs()

			t.Setenv(kafka.EnvSASLUser, "fin")
			t.Setenv(kafka.EnvSASLPassword, "s3cret=,pw")
			t.Setenv(kafka.EnvSASLMechanism, mech)
			cfg := mustConfig(t, "test", "")
			cfg.Metadata.Retry.Max = 0
			produce(t, brokers, cfg, "transactions", 0, 3, 3)

			t.Setenv(kafka.EnvSASLPassword, "wrong")
			bad := mustConfig(t, "test", "")
			bad.Metadata.Retry.Max = 0
			if p, err := sarama.NewSyncProducer(brokers, bad); err == nil {
				p.Close()
				t.Fatal("wrong password accepted")
			}
		})
	}
}

// TestTLSAgainstKfake checks KAFKA_TLS and KAFKA_CA_FILE against a kfake
// broker serving a self-signed certificate for 127.0.0.1.
func TestTLSAgainstKfake(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fintrans test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}),
		kfake.SeedTopics(1, "transactions"),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	t.Setenv(kafka.EnvTLS, "true")
	t.Setenv(kafka.EnvCAFile, caFile)
	cfg := mustConfig(t, "test", "")
	cfg.Metadata.Retry.Max = 0
	produce(t, c.ListenAddrs(), cfg, "transactions", 0, 3, 3)

	// Without the CA the self-signed certificate is refused.
	t.Setenv(kafka.EnvCAFile, "")
	untrusted := mustConfig(t, "test", "")
	untrusted.Metadata.Retry.Max = 0
	if p, err := sarama.NewSyncProducer(c.ListenAddrs(), untrusted); err == nil {
		p.Close()
		t.Fatal("untrusted certificate accepted")
	}
}
