package kafkarecord

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
)

// record is a binary-mode CloudEvent record with the given headers (name,
// value pairs) and value.
func record(value string, headers ...string) *sarama.ConsumerMessage {
	cm := &sarama.ConsumerMessage{Topic: "transactions", Partition: 3, Offset: 99, Value: []byte(value)}
	for i := 0; i+1 < len(headers); i += 2 {
		cm.Headers = append(cm.Headers, &sarama.RecordHeader{Key: []byte(headers[i]), Value: []byte(headers[i+1])})
	}
	return cm
}

// generatorHeaders are the headers of a record as the generator writes it.
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

// The fast path of Decode must answer exactly as decoding the record into
// an event.Event through the SDK does, for every record, and must be the
// path the generator's records take.
func TestFromKafkaFastPathMatchesSDKDecoding(t *testing.T) {
	const data = `{"from":"66","to":"26","amount":"7810.25"}`
	cases := []struct {
		name  string
		cm    *sarama.ConsumerMessage
		fast  bool // the fast path takes it
		valid bool
	}{
		{"generator record", record(data, generatorHeaders()...), true, true},
		{"integer accounts, number amount", record(`{"from":66,"to":26,"amount":7810}`, generatorHeaders()...), true, true},
		{"escaped and non-ASCII accounts", record(`{"from":"Z\u00fcrich \"x\"","to":"東京","amount":1}`, generatorHeaders()...), true, true},
		{"absolute source", record(data, generatorHeaders("ce_source", "https://bank.example/tx?a=b#c")...), true, true},
		{"json+suffix content type", record(data, generatorHeaders("content-type", "application/vnd.x+json; charset=utf-8")...), true, true},
		{"no content type", record(data, generatorHeaders("content-type", "<none>")...), true, true},
		{"knative kafka event with a seed line", record(`"2017-07-23T01:06:47Z;66;26;7810"`, generatorHeaders("ce_type", "dev.knative.kafka.event", "content-type", "text/plain")...), true, true},
		{"missing time", record(data, generatorHeaders("ce_time", "<none>")...), true, false},
		{"bad amount", record(`{"from":"66","to":"26","amount":"1.234"}`, generatorHeaders()...), true, false},
		{"from == to", record(`{"from":"66","to":"66","amount":1}`, generatorHeaders()...), true, false},
		{"wrong content type", record(data, generatorHeaders("content-type", "text/plain")...), true, false},
		{"not json", record(`{"from":`, generatorHeaders()...), true, false},
		{"missing id", record(data, generatorHeaders("ce_id", "<none>")...), false, false},
		{"blank id", record(data, generatorHeaders("ce_id", "  ")...), false, false},
		{"missing source", record(data, generatorHeaders("ce_source", "<none>")...), false, false},
		{"bad source", record(data, generatorHeaders("ce_source", "http://[::1")...), false, false},
		{"missing type", record(data, generatorHeaders("ce_type", "<none>")...), false, false},
		{"bad time", record(data, generatorHeaders("ce_time", "yesterday")...), false, false},
		{"bad content type", record(data, generatorHeaders("content-type", "application/json; ;")...), false, false},
		{"subject", record(data, generatorHeaders("ce_subject", "s")...), false, true},
		{"blank subject", record(data, generatorHeaders("ce_subject", " ")...), false, true}, // the SDK accepts it: so does Decode
		{"other extension", record(data, generatorHeaders("ce_traceparent", "00-x")...), false, true},
		{"invalid extension name", record(data, generatorHeaders("ce_Bad-Name", "x")...), false, false},
		{"unknown spec version", record(data, generatorHeaders("ce_specversion", "9.9")...), false, false},
		{"structured", record(`{"specversion":"1.0","id":"s1","source":"/s","type":"io.fintrans.transaction","time":"2026-11-25T10:00:00Z","data":`+data+`}`,
			"content-type", "application/cloudevents+json"), false, true},
		{"plain seed line", record("2017-07-23T01:06:47Z;66;26;7810"), false, true},
		{"garbage", record("garbage"), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d Decoder
			_, fast := d.ce.FastBinary(kafka_sarama.NewMessageFromConsumerMessage(tc.cm))
			if fast != tc.fast {
				t.Errorf("fast path taken: %v, want %v", fast, tc.fast)
			}
			got := d.Decode(tc.cm)
			want := FromMessage(tc.cm.Topic, "3", "99", kafka_sarama.NewMessageFromConsumerMessage(tc.cm))
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Decode gives\n  %+v\nthe SDK's decoding gives\n  %+v", got, want)
			}
			if (got.Err == nil) != tc.valid {
				t.Errorf("valid %v, want %v: %+v", got.Err == nil, tc.valid, got)
			}
		})
	}
}
