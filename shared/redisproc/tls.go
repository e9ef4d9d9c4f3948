package redisproc

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
	"time"
)

// tlsFiles are the PEM files of a throw-away CA and a server certificate it
// signed.
type tlsFiles struct {
	caFile   string
	certFile string
	keyFile  string
	caPool   *x509.CertPool
}

// clientConfig returns a client config that trusts only our CA. The
// server name is the IP, which the certificate lists as a SAN; it matches
// what redis.ParseURL sets for rediss://127.0.0.1 URLs.
func (f *tlsFiles) clientConfig() *tls.Config {
	return &tls.Config{
		RootCAs:    f.caPool,
		ServerName: "127.0.0.1",
		MinVersion: tls.VersionTLS12,
	}
}

// writeTLSFiles writes ca.crt, redis.crt and redis.key into dir.
func writeTLSFiles(dir string) (*tlsFiles, error) {
	// Backdate NotBefore a little to tolerate clock skew.
	notBefore := time.Now().Add(-time.Hour)
	notAfter := notBefore.Add(10 * 24 * time.Hour)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "redisproc CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// ClientAuth too: with tls-cluster the nodes present this
		// certificate when they connect to each other.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}

	f := &tlsFiles{
		caFile:   filepath.Join(dir, "ca.crt"),
		certFile: filepath.Join(dir, "redis.crt"),
		keyFile:  filepath.Join(dir, "redis.key"),
		caPool:   x509.NewCertPool(),
	}
	f.caPool.AddCert(caCert)
	for _, w := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{f.caFile, "CERTIFICATE", caDER, 0o644},
		{f.certFile, "CERTIFICATE", der, 0o644},
		{f.keyFile, "PRIVATE KEY", keyDER, 0o600},
	} {
		data := pem.EncodeToMemory(&pem.Block{Type: w.typ, Bytes: w.der})
		if err := os.WriteFile(w.path, data, w.mode); err != nil {
			return nil, fmt.Errorf("writing %s: %w", w.path, err)
		}
	}
	return f, nil
}

// randomSerial returns a random positive 127-bit serial number.
func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}
