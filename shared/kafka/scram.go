package kafka

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// scramHash names a SCRAM hash function.
type scramHash struct {
	name string
	new  func() hash.Hash
	size int
}

var (
	sha256Hash = scramHash{"SHA-256", sha256.New, sha256.Size}
	sha512Hash = scramHash{"SHA-512", sha512.New, sha512.Size}
)

// minSCRAMIterations is the smallest PBKDF2 iteration count we accept from a
// server; Kafka itself refuses SCRAM credentials below 4096.
const minSCRAMIterations = 4096

// scramClient is a client-side SCRAM (RFC 5802/7677) conversation implementing
// sarama.SCRAMClient with the standard library only, so fintrans needs no
// extra dependency for SCRAM-SHA-256/512. Channel binding is not used (gs2
// header "n,"), as in Kafka. Passwords are used as given (no SASLprep), which
// is exact for ASCII passwords.
type scramClient struct {
	h scramHash

	user, pass, authzID string
	nonce               string // client nonce

	step            int
	clientFirstBare string
	serverSignature []byte
	done            bool
}

func newSCRAMClient(h scramHash) *scramClient { return &scramClient{h: h} }

// Begin starts a conversation for the given credentials.
func (c *scramClient) Begin(user, pass, authzID string) error {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("%w: nonce: %v", errSCRAM, err)
	}
	*c = scramClient{h: c.h, user: user, pass: pass, authzID: authzID, nonce: base64.RawStdEncoding.EncodeToString(b)}
	return nil
}

// Done reports whether the server's signature has been verified.
func (c *scramClient) Done() bool { return c.done }

// Step consumes the server's message and returns the next client message.
func (c *scramClient) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		c.clientFirstBare = "n=" + scramEscape(c.user) + ",r=" + c.nonce
		return c.gs2Header() + c.clientFirstBare, nil
	case 2:
		return c.clientFinal(challenge)
	case 3:
		return "", c.verifyServerFinal(challenge)
	default:
		return "", fmt.Errorf("%w: unexpected extra step", errSCRAM)
	}
}

func (c *scramClient) gs2Header() string {
	if c.authzID == "" {
		return "n,,"
	}
	return "n,a=" + scramEscape(c.authzID) + ","
}

// clientFinal answers the server-first message "r=...,s=...,i=...".
func (c *scramClient) clientFinal(serverFirst string) (string, error) {
	attrs := scramAttrs(serverFirst)
	if _, ok := attrs["m"]; ok {
		return "", fmt.Errorf("%w: server requires an unsupported extension", errSCRAM)
	}
	if e, ok := attrs["e"]; ok {
		return "", fmt.Errorf("%w: server error %q", errSCRAM, e)
	}
	nonce := attrs["r"]
	if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) {
		return "", fmt.Errorf("%w: server nonce does not extend the client nonce", errSCRAM)
	}
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	if err != nil || len(salt) == 0 {
		return "", fmt.Errorf("%w: bad salt", errSCRAM)
	}
	iters, err := strconv.Atoi(attrs["i"])
	if err != nil || iters < minSCRAMIterations {
		return "", fmt.Errorf("%w: bad iteration count %q", errSCRAM, attrs["i"])
	}

	salted, err := pbkdf2.Key(c.h.new, c.pass, salt, iters, c.h.size)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errSCRAM, err)
	}
	clientKey := c.hmac(salted, "Client Key")
	storedKey := c.h.new()
	storedKey.Write(clientKey)

	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(c.gs2Header())) + ",r=" + nonce
	authMessage := c.clientFirstBare + "," + serverFirst + "," + withoutProof

	proof := c.hmac(storedKey.Sum(nil), authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	c.serverSignature = c.hmac(c.hmac(salted, "Server Key"), authMessage)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// verifyServerFinal checks "v=<server signature>".
func (c *scramClient) verifyServerFinal(serverFinal string) error {
	attrs := scramAttrs(serverFinal)
	if e, ok := attrs["e"]; ok {
		return fmt.Errorf("%w: server error %q", errSCRAM, e)
	}
	got, err := base64.StdEncoding.DecodeString(attrs["v"])
	if err != nil || subtle.ConstantTimeCompare(got, c.serverSignature) != 1 {
		return fmt.Errorf("%w: server signature mismatch", errSCRAM)
	}
	c.done = true
	return nil
}

func (c *scramClient) hmac(key []byte, msg string) []byte {
	m := hmac.New(c.h.new, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// scramAttrs parses "k=v,k=v" (values may contain '=').
func scramAttrs(s string) map[string]string {
	out := make(map[string]string)
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && len(k) == 1 {
			if _, dup := out[k]; !dup {
				out[k] = v
			}
		}
	}
	return out
}

// scramEscape encodes a user name as a SCRAM saslname.
func scramEscape(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}
