package embeddedkafka

import (
	"encoding/binary"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file works around one interoperability gap between kfake and sarama.
//
// For a partition without a committed offset, kfake answers OffsetFetch with a
// null Metadata string. The Kafka schema allows null there, but the Java
// broker always sends "" and sarama (v1.45) decodes the field of the flexible
// versions (v6+, used when Version >= 2.4.0) as a non-nullable compact string,
// failing with "kafka: error decoding packet: invalid byteslice length". The
// consumer group then never gets past its first session.
//
// The listener below wraps each accepted connection: it notes the correlation
// IDs of OffsetFetch requests of version 6 or more and, in the matching
// responses, replaces null metadata by "" — what a real broker sends. All
// other traffic passes through untouched. Versions below 2.4.0 use the
// non-flexible encoding, where sarama reads null as "", and need no fix.

const (
	offsetFetchKey         = 9
	offsetFetchFirstFlexed = 6
)

// offsetFetchFixListener wraps a listener's connections in offsetFetchFixConn.
type offsetFetchFixListener struct{ net.Listener }

func (l offsetFetchFixListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &offsetFetchFixConn{Conn: c, pending: make(map[int32]int16)}, nil
}

// listenWithOffsetFetchFix is a kfake ListenFn.
func listenWithOffsetFetchFix(network, address string) (net.Listener, error) {
	l, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return offsetFetchFixListener{l}, nil
}

// offsetFetchFixConn is the broker side of one client connection: Read sees
// the client's requests, Write the broker's responses.
type offsetFetchFixConn struct {
	net.Conn

	// Request framing state, touched only by the reading goroutine:
	// hdr collects the first 12 bytes of a request (size, key, version,
	// correlation ID); skip is how much of the current request is left.
	hdr  []byte
	skip int

	mu      sync.Mutex
	pending map[int32]int16 // correlation ID -> OffsetFetch version
}

func (c *offsetFetchFixConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.scanRequests(p[:n])
	return n, err
}

// scanRequests follows the request frames in b, remembering OffsetFetch
// requests that need their response fixed.
func (c *offsetFetchFixConn) scanRequests(b []byte) {
	for len(b) > 0 {
		if c.skip > 0 {
			n := min(c.skip, len(b))
			c.skip -= n
			b = b[n:]
			continue
		}
		n := min(12-len(c.hdr), len(b))
		c.hdr = append(c.hdr, b[:n]...)
		b = b[n:]
		if len(c.hdr) < 12 {
			return
		}
		size := int(binary.BigEndian.Uint32(c.hdr[0:4]))
		key := int16(binary.BigEndian.Uint16(c.hdr[4:6]))
		version := int16(binary.BigEndian.Uint16(c.hdr[6:8]))
		corr := int32(binary.BigEndian.Uint32(c.hdr[8:12]))
		if key == offsetFetchKey && version >= offsetFetchFirstFlexed {
			c.mu.Lock()
			c.pending[corr] = version
			c.mu.Unlock()
		}
		c.hdr = c.hdr[:0]
		c.skip = max(size-8, 0) // size counts key, version and correlation ID
	}
}

// Write passes responses through, fixing the OffsetFetch ones noted by Read.
// kfake writes each response as one complete frame in one Write call; any
// other shape is passed through unchanged.
func (c *offsetFetchFixConn) Write(p []byte) (int, error) {
	if len(p) < 8 || int(binary.BigEndian.Uint32(p[0:4])) != len(p)-4 {
		return c.Conn.Write(p)
	}
	corr := int32(binary.BigEndian.Uint32(p[4:8]))
	c.mu.Lock()
	version, ok := c.pending[corr]
	delete(c.pending, corr)
	c.mu.Unlock()
	if !ok {
		return c.Conn.Write(p)
	}
	fixed := fixOffsetFetchResponse(p, version)
	if _, err := c.Conn.Write(fixed); err != nil {
		return 0, err
	}
	return len(p), nil
}

// fixOffsetFetchResponse returns frame (size, correlation ID, flexible
// response header, body) with null partition metadata replaced by "". On any
// parse problem it returns frame unchanged.
func fixOffsetFetchResponse(frame []byte, version int16) []byte {
	// Skip the header's tagged fields.
	r := kbin.Reader{Src: frame[8:]}
	for n := r.Uvarint(); n > 0; n-- {
		r.Uvarint()
		r.Span(int(r.Uvarint()))
	}
	if !r.Ok() {
		return frame
	}
	header := frame[8 : len(frame)-len(r.Src)]

	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.SetVersion(version)
	if err := resp.ReadFrom(r.Src); err != nil {
		return frame
	}
	changed := false
	empty := func(s **string) {
		if *s == nil {
			*s = new(string)
			changed = true
		}
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			empty(&resp.Topics[i].Partitions[j].Metadata)
		}
	}
	for g := range resp.Groups {
		for i := range resp.Groups[g].Topics {
			for j := range resp.Groups[g].Topics[i].Partitions {
				empty(&resp.Groups[g].Topics[i].Partitions[j].Metadata)
			}
		}
	}
	if !changed {
		return frame
	}
	out := make([]byte, 8, len(frame)+16)
	out = append(out, header...)
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out[0:4], uint32(len(out)-4))
	copy(out[4:8], frame[4:8])
	return out
}
