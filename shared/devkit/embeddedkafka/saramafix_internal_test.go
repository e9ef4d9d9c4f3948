package embeddedkafka

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// frame builds a response frame the way kfake writes it.
func frame(corr int32, resp kmsg.Response) []byte {
	b := make([]byte, 8, 64)
	if resp.IsFlexible() {
		b = append(b, 0) // empty header tags
	}
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)-4))
	binary.BigEndian.PutUint32(b[4:8], uint32(corr))
	return b
}

func offsetFetchResponse(version int16, metadata *string) *kmsg.OffsetFetchResponse {
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.SetVersion(version)
	t := kmsg.NewOffsetFetchResponseTopic()
	t.Topic = "transactions"
	p := kmsg.NewOffsetFetchResponseTopicPartition()
	p.Offset, p.LeaderEpoch, p.Metadata = -1, -1, metadata
	t.Partitions = append(t.Partitions, p)
	resp.Topics = append(resp.Topics, t)
	return resp
}

func TestFixOffsetFetchResponse(t *testing.T) {
	for _, v := range []int16{6, 7} {
		in := frame(42, offsetFetchResponse(v, nil))
		out := fixOffsetFetchResponse(in, v)
		if bytes.Equal(in, out) {
			t.Fatalf("v%d: frame not changed", v)
		}
		if got := int(binary.BigEndian.Uint32(out[0:4])); got != len(out)-4 {
			t.Errorf("v%d: size %d, frame %d", v, got, len(out)-4)
		}
		if corr := binary.BigEndian.Uint32(out[4:8]); corr != 42 {
			t.Errorf("v%d: correlation ID %d", v, corr)
		}
		resp := kmsg.NewPtrOffsetFetchResponse()
		resp.SetVersion(v)
		if err := resp.ReadFrom(out[9:]); err != nil {
			t.Fatal(err)
		}
		if m := resp.Topics[0].Partitions[0].Metadata; m == nil || *m != "" {
			t.Errorf("v%d: metadata %v, want empty string", v, m)
		}
		if resp.Topics[0].Partitions[0].Offset != -1 {
			t.Errorf("v%d: offset changed", v)
		}
	}

	// Non-null metadata and garbage are passed through untouched.
	meta := "m"
	in := frame(1, offsetFetchResponse(7, &meta))
	if out := fixOffsetFetchResponse(in, 7); !bytes.Equal(in, out) {
		t.Error("frame with metadata rewritten")
	}
	junk := []byte{0, 0, 0, 6, 0, 0, 0, 1, 0xff, 0xff}
	if out := fixOffsetFetchResponse(junk, 7); !bytes.Equal(junk, out) {
		t.Error("junk rewritten")
	}
}

// TestOffsetFetchFixConnScansSplitRequests feeds requests one byte at a time
// and checks only flexible OffsetFetch correlation IDs are remembered.
func TestOffsetFetchFixConnScansSplitRequests(t *testing.T) {
	req := func(key, version int16, corr int32, body int) []byte {
		b := make([]byte, 12+body)
		binary.BigEndian.PutUint32(b[0:4], uint32(8+body))
		binary.BigEndian.PutUint16(b[4:6], uint16(key))
		binary.BigEndian.PutUint16(b[6:8], uint16(version))
		binary.BigEndian.PutUint32(b[8:12], uint32(corr))
		return b
	}
	var stream []byte
	stream = append(stream, req(0, 9, 1, 100)...) // produce
	stream = append(stream, req(9, 7, 2, 30)...)  // offset fetch v7: fix
	stream = append(stream, req(9, 5, 3, 30)...)  // offset fetch v5: no fix
	stream = append(stream, req(9, 6, 4, 0)...)   // offset fetch v6, empty body

	c := &offsetFetchFixConn{pending: make(map[int32]int16)}
	for i := range stream {
		c.scanRequests(stream[i : i+1])
	}
	if len(c.pending) != 2 || c.pending[2] != 7 || c.pending[4] != 6 {
		t.Errorf("pending = %v, want map[2:7 4:6]", c.pending)
	}

	// A remembered response is rewritten and forgotten; others pass.
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	c.Conn = server
	in := frame(2, offsetFetchResponse(7, nil))
	go func() { _, _ = c.Write(in) }()
	buf := make([]byte, 256)
	n, _ := client.Read(buf)
	if bytes.Equal(buf[:n], in) {
		t.Error("pending response not rewritten")
	}
	if _, ok := c.pending[2]; ok {
		t.Error("correlation ID not forgotten")
	}
}
