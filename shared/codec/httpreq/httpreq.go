// Package httpreq is the codec of HTTP requests to detect: a CloudEvent in
// binary or structured mode, a batch, a request of the OpenFaaS
// kafka-connector, or a plain body of seed lines, each to transfers. The
// other direction, events posted over HTTP, is the SDK's structured mode in
// sink.HTTP.
package httpreq

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	ce "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/codec/kafkarecord"
	"github.com/fintrans/fintrans/shared/codec/seedline"
	"github.com/fintrans/fintrans/shared/transfer"
)

// Media types.
const (
	BatchContentType      = "application/cloudevents-batch+json"
	StructuredContentType = "application/cloudevents+json"
)

// LineSource is the source given to seed lines posted as a plain body.
const LineSource = "/fintrans/http"

// Request is what one HTTP request carried.
type Request struct {
	Items []transfer.Item
	Batch bool // several events: the answer is per event
}

// Decoder decodes requests. Its zero value is ready; it is safe for
// concurrent use.
type Decoder struct {
	ce cloudevent.Decoder
}

var bad = transfer.Bad

// Decode decodes an HTTP request's headers and (already size-limited) body;
// maxBatch (MAX_BATCH) bounds the events of a batch and the lines of a body.
// The forms, in the order they are recognised:
//   - a batch (Content-Type application/cloudevents-batch+json): a JSON array of
//     structured events, each decoded on its own;
//   - a request from the OpenFaaS kafka-connector (X-Kafka-Offset header): the
//     record value with the record's headers as X-Kafka-<name>;
//   - a CloudEvent in binary or structured mode;
//   - otherwise a plain body of seed lines (time;from;to;amount), one per line.
//
// A request that is not a batch and cannot be decoded at all is an error.
func (d *Decoder) Decode(h http.Header, body []byte, maxBatch int) (Request, error) {
	if cehttp.IsHTTPBatch(h) {
		return fromBatch(body, maxBatch)
	}
	if h.Get("X-Kafka-Offset") != "" || h.Get("X-Topic") != "" {
		it := fromConnector(h, body)
		return Request{Items: []transfer.Item{it}}, it.Err
	}
	msg := cehttp.NewMessage(h, io.NopCloser(bytes.NewReader(body)))
	switch msg.ReadEncoding() {
	case binding.EncodingBinary:
		if it, ok := d.ce.FastBinary(msg); ok {
			return Request{Items: []transfer.Item{it}}, it.Err
		}
		return fromHTTPEvent(h, body)
	case binding.EncodingStructured:
		return fromHTTPEvent(h, body)
	}
	return fromPlain(h, body, maxBatch)
}

// fromHTTPEvent decodes a CloudEvent request through binding.ToEvent.
func fromHTTPEvent(h http.Header, body []byte) (Request, error) {
	e, err := binding.ToEvent(context.Background(), cehttp.NewMessage(h, io.NopCloser(bytes.NewReader(body))))
	if err != nil {
		err = bad("malformed CloudEvent: %s", transfer.OneLine(err.Error()))
		return Request{Items: []transfer.Item{{Err: err}}}, err
	}
	it := cloudevent.FromEvent(*e)
	return Request{Items: []transfer.Item{it}}, it.Err
}

func fromBatch(body []byte, maxBatch int) (Request, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return Request{Batch: true}, bad("batch is not a JSON array of CloudEvents: %s", transfer.OneLine(err.Error()))
	}
	if len(raws) == 0 {
		return Request{Batch: true}, bad("batch is empty")
	}
	if len(raws) > maxBatch {
		return Request{Batch: true}, bad("batch has %d events, more than the limit of %d (MAX_BATCH)", len(raws), maxBatch)
	}
	r := Request{Batch: true, Items: make([]transfer.Item, len(raws))}
	for i, raw := range raws {
		var e ce.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			r.Items[i] = transfer.Item{Ref: "#" + strconv.Itoa(i), Err: bad("event %d is not a valid CloudEvent: %s", i, transfer.OneLine(err.Error()))}
			continue
		}
		r.Items[i] = cloudevent.FromEvent(e)
	}
	return r, nil
}

// fromConnector decodes the OpenFaaS kafka-connector's form: the record value
// as the body and each record header as X-Kafka-<header>.
func fromConnector(h http.Header, body []byte) transfer.Item {
	headers := map[string][]byte{}
	for k, vs := range h {
		name, ok := strings.CutPrefix(strings.ToLower(k), "x-kafka-")
		if !ok || len(vs) == 0 {
			continue
		}
		switch name {
		case "partition", "offset", "key", "topic", "timestamp":
			continue
		}
		headers[name] = []byte(vs[0])
	}
	topic := h.Get("X-Topic")
	if topic == "" {
		topic = h.Get("X-Kafka-Topic")
	}
	return kafkarecord.FromMessage(topic, h.Get("X-Kafka-Partition"), h.Get("X-Kafka-Offset"),
		kafka_sarama.NewMessage(body, string(headers["content-type"]), headers))
}

// fromPlain decodes a body of seed lines. A line has no id of its own: it
// gets one from its content and its occurrence in the body (the first
// "line-<hash>", the n-th identical one "line-<hash>-<n>"), so identical
// lines in one body are separate transfers and a retried post is recognised
// as duplicates.
func fromPlain(h http.Header, body []byte, maxBatch int) (Request, error) {
	if ct := h.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		if mt != "text/plain" && mt != "application/octet-stream" {
			err := bad("unsupported content type %q: send a CloudEvent (binary or structured), a batch (%s) or text/plain seed lines", ct, BatchContentType)
			return Request{Items: []transfer.Item{{Err: err}}}, err
		}
	}
	var lines []string
	for _, l := range strings.Split(string(body), "\n") {
		if l = seedline.Trim(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		err := bad("empty body: send a CloudEvent or seed lines (time;from;to;amount)")
		return Request{Items: []transfer.Item{{Err: err}}}, err
	}
	if len(lines) > maxBatch {
		err := bad("body has %d lines, more than the limit of %d (MAX_BATCH)", len(lines), maxBatch)
		return Request{Batch: true}, err
	}
	r := Request{Batch: len(lines) > 1, Items: make([]transfer.Item, len(lines))}
	var seen map[string]int // occurrences of each line so far (bodies of more than one line)
	if len(lines) > 1 {
		seen = make(map[string]int, len(lines))
	}
	for i, l := range lines {
		t, err := seedline.Parse(l)
		if err == nil {
			t.Source, t.ID = LineSource, seedline.ID(l, occurrence(seen, l))
			err = t.Validate()
		}
		r.Items[i] = transfer.Item{Ref: "line " + strconv.Itoa(i+1), Transfer: t, Err: err}
	}
	if !r.Batch {
		return r, r.Items[0].Err
	}
	return r, nil
}

func occurrence(seen map[string]int, line string) int {
	if seen == nil {
		return 1
	}
	seen[line]++
	return seen[line]
}
