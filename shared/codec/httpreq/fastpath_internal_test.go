package httpreq

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
)

// generatorHeaders are the headers of an event as the generator sends it.
func generatorHeaders(replace ...string) []string {
	h := map[string]string{
		"ce_specversion": "1.0", "ce_type": cloudevent.TransactionType, "ce_id": "tx-1", "ce_source": cloudevent.GeneratorSource,
		"ce_time": "2026-11-25T10:00:00.123Z", "content-type": "application/json", "ce_partitionkey": "66:26",
	}
	for i := 0; i+1 < len(replace); i += 2 {
		if replace[i+1] == "<none>" {
			delete(h, replace[i])
		} else {
			h[replace[i]] = replace[i+1]
		}
	}
	var out []string
	for k, v := range h {
		out = append(out, k, v)
	}
	return out
}

// The same holds for binary-mode HTTP requests (Knative, curl): Decode's
// fast path answers exactly as binding.ToEvent then cloudevent.FromEvent do.
func TestFromHTTPFastPathMatchesSDKDecoding(t *testing.T) {
	const data = `{"from":"66","to":"26","amount":"7810.25"}`
	hdr := func(replace ...string) http.Header {
		h := http.Header{}
		kv := generatorHeaders(replace...)
		for i := 0; i+1 < len(kv); i += 2 {
			name := kv[i]
			if rest, ok := strings.CutPrefix(name, "ce_"); ok {
				name = "Ce-" + rest
			}
			h.Set(name, kv[i+1])
		}
		return h
	}
	cases := []struct {
		name string
		h    http.Header
		body string
		fast bool
	}{
		{"generator event", hdr(), data, true},
		{"knative kafka event", hdr("ce_type", "dev.knative.kafka.event", "content-type", "text/plain"), "2017-07-23T01:06:47Z;66;26;7810", true},
		{"missing time", hdr("ce_time", "<none>"), data, true},
		{"bad amount", hdr(), `{"from":"66","to":"26","amount":-1}`, true},
		{"blank id", hdr("ce_id", " "), data, false},
		{"bad time", hdr("ce_time", "2026-13-01T00:00:00Z"), data, false},
		{"bad source", hdr("ce_source", "http://[::1"), data, false},
		{"traceparent extension", hdr("ce_traceparent", "00-abc"), data, false},
		{"knative arrival time", hdr("ce_knativearrivaltime", "2026-11-25T10:00:00Z"), data, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d Decoder
			_, fast := d.ce.FastBinary(cehttp.NewMessage(tc.h, io.NopCloser(strings.NewReader(tc.body))))
			if fast != tc.fast {
				t.Errorf("fast path taken: %v, want %v", fast, tc.fast)
			}
			got, gerr := d.Decode(tc.h, []byte(tc.body), 10)
			want, werr := fromHTTPEvent(tc.h, []byte(tc.body))
			if fmt.Sprint(got, gerr) != fmt.Sprint(want, werr) {
				t.Errorf("Decode gives\n  %+v %v\nthe SDK's decoding gives\n  %+v %v", got, gerr, want, werr)
			}
		})
	}
}
