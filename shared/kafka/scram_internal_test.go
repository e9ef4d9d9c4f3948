package kafka

import (
	"errors"
	"strings"
	"testing"
)

// RFC 7677, section 3: the SCRAM-SHA-256 example exchange.
const (
	rfcNonce       = "rOprNGfwEbeRWgbNEkqO"
	rfcServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	rfcClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

func rfcClient(t *testing.T) *scramClient {
	t.Helper()
	c := newSCRAMClient(sha256Hash)
	if err := c.Begin("user", "pencil", ""); err != nil {
		t.Fatal(err)
	}
	c.nonce = rfcNonce
	first, err := c.Step("")
	if err != nil || first != "n,,n=user,r="+rfcNonce {
		t.Fatalf("client-first = %q, %v", first, err)
	}
	return c
}

func TestSCRAMRFC7677Vector(t *testing.T) {
	c := rfcClient(t)
	final, err := c.Step(rfcServerFirst)
	if err != nil || final != rfcClientFinal {
		t.Fatalf("client-final = %q, %v\nwant %q", final, err, rfcClientFinal)
	}
	if c.Done() {
		t.Fatal("done before the server signature")
	}
	if _, err := c.Step(rfcServerFinal); err != nil || !c.Done() {
		t.Fatalf("server-final: %v, done %v", err, c.Done())
	}
}

func TestSCRAMRejectsBadServer(t *testing.T) {
	c := rfcClient(t)
	if _, err := c.Step(rfcServerFirst); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Step("v=" + strings.Repeat("A", 44)); !errors.Is(err, errSCRAM) || c.Done() {
		t.Errorf("forged server signature: %v, done %v", err, c.Done())
	}

	for name, serverFirst := range map[string]string{
		"foreign nonce":  "r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		"same nonce":     "r=" + rfcNonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		"few iterations": "r=" + rfcNonce + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1",
		"bad salt":       "r=" + rfcNonce + "x,s=!!,i=4096",
		"extension":      "m=ext,r=" + rfcNonce + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		"server error":   "e=other-error",
	} {
		c := rfcClient(t)
		if _, err := c.Step(serverFirst); !errors.Is(err, errSCRAM) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestSCRAMEscapesNames(t *testing.T) {
	c := newSCRAMClient(sha512Hash)
	if err := c.Begin("a=b,c", "p", "z,z"); err != nil {
		t.Fatal(err)
	}
	first, _ := c.Step("")
	if !strings.HasPrefix(first, "n,a=z=2Cz,n=a=3Db=2Cc,r=") {
		t.Errorf("client-first = %q", first)
	}
}
