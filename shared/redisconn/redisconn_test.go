package redisconn_test

// redisconn against real redis-server processes: AUTH from REDIS_URL,
// REDIS_PASSWORD and REDIS_PASSWORD_FILE (the OpenFaaS secret form), TLS
// with REDIS_CA_FILE (and refusal of a server signed by another CA), cluster
// URLs, and no password in Describe or in any error of Open or of the
// client.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/redisconn"
	"github.com/fintrans/fintrans/shared/redistest"
)

// secret is a password with characters that need escaping in a URL.
const secret = "s3cr3t/p@ss:w0rd%"

func escaped(p string) string { return url.UserPassword("", p).String()[1:] }

// noSecret fails the test when s holds the password in any usual form.
func noSecret(t *testing.T, what, s string, passwords ...string) {
	t.Helper()
	for _, p := range append(passwords, secret) {
		if strings.Contains(s, p) || strings.Contains(s, escaped(p)) || strings.Contains(s, url.QueryEscape(p)) {
			t.Errorf("%s holds a password: %q", what, s)
		}
	}
}

func open(t *testing.T, env map[string]string) (redis.UniversalClient, error) {
	t.Helper()
	cfg, err := config.FromMap(env)
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := redisconn.Open(cfg)
	if err == nil {
		t.Cleanup(func() { rdb.Close() })
	}
	return rdb, err
}

func ping(rdb redis.UniversalClient) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return rdb.Ping(ctx).Err()
}

// plainURL is srv's URL without credentials.
func plainURL(srv *redistest.Server) string {
	u, _ := url.Parse(srv.URL)
	u.User = nil
	return u.String()
}

func TestAuth(t *testing.T) {
	srv := redistest.Start(t, redistest.WithPassword(secret))
	file := filepath.Join(t.TempDir(), "redis-password")
	// An OpenFaaS secret file, with the trailing newline `faas-cli secret
	// create --from-file` keeps.
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongInURL := strings.Replace(srv.URL, escaped(secret), "wrong", 1)
	if wrongInURL == srv.URL {
		t.Fatalf("URL %s does not carry the password", srv.URL)
	}
	good := []struct {
		name string
		env  map[string]string
	}{
		{"password in REDIS_URL", map[string]string{"REDIS_URL": srv.URL}},
		{"REDIS_PASSWORD", map[string]string{"REDIS_URL": plainURL(srv), "REDIS_PASSWORD": secret}},
		{"REDIS_PASSWORD_FILE", map[string]string{"REDIS_URL": plainURL(srv), "REDIS_PASSWORD_FILE": file}},
		{"REDIS_PASSWORD overrides the URL's", map[string]string{"REDIS_URL": wrongInURL, "REDIS_PASSWORD": secret}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			rdb, err := open(t, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if err := ping(rdb); err != nil {
				t.Fatalf("PING: %v", err)
			}
			noSecret(t, "Describe", redisconn.Describe(tc.env["REDIS_URL"]))
		})
	}
	bad := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no password", map[string]string{"REDIS_URL": plainURL(srv)}, "NOAUTH"},
		{"wrong password", map[string]string{"REDIS_URL": plainURL(srv), "REDIS_PASSWORD": "not-" + secret}, "WRONGPASS"},
		{"wrong password in the URL", map[string]string{"REDIS_URL": wrongInURL}, "WRONGPASS"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			rdb, err := open(t, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			err = ping(rdb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("PING: %v, want %s", err, tc.want)
			}
			noSecret(t, "the error", err.Error(), "not-"+secret, "wrong")
		})
	}
}

// otherCA writes a CA certificate that signed nothing the server has.
func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "not the redis CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "other-ca.crt")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTLS(t *testing.T) {
	srv := redistest.Start(t, redistest.WithTLS(), redistest.WithPassword(secret))
	if !strings.HasPrefix(srv.URL, "rediss://") {
		t.Fatalf("TLS server URL %s", srv.URL)
	}
	t.Run("rediss with REDIS_CA_FILE and REDIS_PASSWORD_FILE", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(file, []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
		rdb, err := open(t, map[string]string{"REDIS_URL": plainURL(srv), "REDIS_CA_FILE": srv.CAFile, "REDIS_PASSWORD_FILE": file})
		if err != nil {
			t.Fatal(err)
		}
		if err := ping(rdb); err != nil {
			t.Fatalf("PING over TLS: %v", err)
		}
		// Really TLS: the server speaks nothing else on that port.
		plain, err := open(t, map[string]string{"REDIS_URL": "redis://" + srv.Addr + "/0", "REDIS_PASSWORD": secret})
		if err != nil {
			t.Fatal(err)
		}
		if err := ping(plain); err == nil {
			t.Fatal("a plain-text client talked to the TLS-only server")
		}
	})
	refused := []struct {
		name string
		env  map[string]string
	}{
		{"CA of someone else", map[string]string{"REDIS_URL": srv.URL, "REDIS_CA_FILE": otherCA(t)}},
		{"system roots only", map[string]string{"REDIS_URL": srv.URL}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			rdb, err := open(t, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			err = ping(rdb)
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("PING with an untrusted server certificate: %v", err)
			}
			noSecret(t, "the error", err.Error())
		})
	}
	t.Run("REDIS_CA_FILE not PEM or missing", func(t *testing.T) {
		notPEM := filepath.Join(t.TempDir(), "ca.txt")
		if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{notPEM, filepath.Join(t.TempDir(), "missing.crt")} {
			_, err := open(t, map[string]string{"REDIS_URL": srv.URL, "REDIS_CA_FILE": f})
			if err == nil || !strings.Contains(err.Error(), "REDIS_CA_FILE") {
				t.Fatalf("CA file %s: %v", f, err)
			}
			noSecret(t, "the error", err.Error())
		}
	})
}

func TestCluster(t *testing.T) {
	check := func(t *testing.T, rdb redis.UniversalClient) {
		t.Helper()
		cc, ok := rdb.(*redis.ClusterClient)
		if !ok {
			t.Fatalf("Open gave a %T, want a *redis.ClusterClient", rdb)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for i := 0; i < 60; i++ { // keys over every node's slots
			k := "k" + strconv.Itoa(i)
			if err := cc.Set(ctx, k, i, time.Minute).Err(); err != nil {
				t.Fatalf("SET %s: %v", k, err)
			}
			if v, err := cc.Get(ctx, k).Int(); err != nil || v != i {
				t.Fatalf("GET %s: %v %v", k, v, err)
			}
		}
		var masters atomic.Int32 // ForEachMaster runs the function concurrently
		err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			masters.Add(1)
			return m.Ping(ctx).Err()
		})
		if err != nil || masters.Load() != 3 {
			t.Fatalf("masters %d: %v", masters.Load(), err)
		}
	}
	t.Run("password", func(t *testing.T) {
		cl := redistest.StartCluster(t, 3, redistest.WithPassword(secret))
		if !strings.Contains(cl.URL, "?addr=") {
			t.Fatalf("cluster URL %s", cl.URL)
		}
		rdb, err := open(t, map[string]string{"REDIS_URL": cl.URL})
		if err != nil {
			t.Fatal(err)
		}
		check(t, rdb)
		noSecret(t, "Describe", redisconn.Describe(cl.URL))
		// The password from REDIS_PASSWORD, and a single seed forced into
		// cluster mode by REDIS_CLUSTER.
		u, _ := url.Parse(cl.URL)
		u.User = nil
		rdb, err = open(t, map[string]string{"REDIS_URL": u.String(), "REDIS_PASSWORD": secret})
		if err != nil {
			t.Fatal(err)
		}
		check(t, rdb)
		rdb, err = open(t, map[string]string{"REDIS_URL": "redis://" + cl.Addrs[1], "REDIS_CLUSTER": "true", "REDIS_PASSWORD": secret})
		if err != nil {
			t.Fatal(err)
		}
		check(t, rdb)
	})
	t.Run("TLS", func(t *testing.T) {
		cl := redistest.StartCluster(t, 3, redistest.WithTLS(), redistest.WithPassword(secret))
		rdb, err := open(t, map[string]string{"REDIS_URL": cl.URL, "REDIS_CA_FILE": cl.Nodes[0].CAFile})
		if err != nil {
			t.Fatal(err)
		}
		check(t, rdb)
		rdb, err = open(t, map[string]string{"REDIS_URL": cl.URL, "REDIS_CA_FILE": otherCA(t)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = rdb.Ping(ctx).Err()
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("cluster PING with the wrong CA: %v", err)
		}
		noSecret(t, "the error", err.Error())
	})
}

func TestDescribeHidesPassword(t *testing.T) {
	e := escaped(secret)
	for _, u := range []string{
		"redis://:" + e + "@127.0.0.1:6379/0",
		"redis://default:" + e + "@redis.example:6379/2",
		"rediss://user:" + e + "@redis.example:6380/0?dial_timeout=3s",
		"redis://:" + e + "@10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000",
		"rediss://" + e + "@redis.example:6380", // password given as the user name
		"redis://:" + e + "@[::1",               // unparsable
	} {
		d := redisconn.Describe(u)
		noSecret(t, "Describe("+u+")", d)
		if d == "" {
			t.Errorf("Describe(%s) is empty", u)
		}
	}
	if d := redisconn.Describe("redis://:" + e + "@redis.example:6379/0"); !strings.Contains(d, "redis.example:6379") {
		t.Errorf("Describe drops the address: %q", d)
	}
}

func TestOpenErrorsHidePassword(t *testing.T) {
	e := escaped(secret)
	for _, u := range []string{
		"redis://:" + e + "@127.0.0.1:6379/notanumber",
		"redis://:" + e + "@127.0.0.1:6379/0?bogus=1",
		"redis://:" + e + "@127.0.0.1:6379/0?dial_timeout=soon",
		"redis://:" + e + "@127.0.0.1:6379/0?addr=127.0.0.1:6380&bogus=1",
		"redis://:" + e + "@127.0.0.1:6379/0?addr=127.0.0.1:6380&max_redirects=many",
		"redis://:" + e + "@[::1",
		"redis://:" + secret + "@127.0.0.1:6379/0", // not escaped
		"http://:" + e + "@127.0.0.1:6379",
		"rediss:// :" + e + "@127.0.0.1",
	} {
		_, err := redisconn.Open(config.Config{RedisURL: u})
		if err == nil {
			t.Errorf("Open accepted %s", u)
			continue
		}
		if !strings.HasPrefix(err.Error(), "REDIS_URL: ") {
			t.Errorf("Open(%s) error does not name REDIS_URL: %v", u, err)
		}
		noSecret(t, "Open("+u+") error", err.Error())
	}
	// A server that is not there: the client's errors name the address only.
	rdb, err := redisconn.Open(config.Config{RedisURL: "redis://:" + e + "@127.0.0.1:1/0"})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := ping(rdb); err == nil {
		t.Fatal("PING to a closed port succeeded")
	} else {
		noSecret(t, "PING error", err.Error())
	}
}
