package event

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	ce "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/fintrans/fintrans/shared/money"
)

// Item is one decoded element of a request or record: a transfer, or the
// reason it was refused. Ref names it in answers (its id, or its position).
type Item struct {
	Ref      string
	Transfer Transfer
	Err      error
}

// Request is what one HTTP request carried.
type Request struct {
	Items []Item
	Batch bool // several events: the answer is per event
}

// Media types.
const (
	BatchContentType      = "application/cloudevents-batch+json"
	StructuredContentType = "application/cloudevents+json"
)

// FromHTTP decodes an HTTP request's headers and (already size-limited) body.
// The forms, in the order they are recognised:
//   - a batch (Content-Type application/cloudevents-batch+json): a JSON array of
//     structured events, each decoded on its own;
//   - a request from the OpenFaaS kafka-connector (X-Kafka-Offset header): the
//     record value with the record's headers as X-Kafka-<name>;
//   - a CloudEvent in binary or structured mode;
//   - otherwise a plain body of seed lines (time;from;to;amount), one per line.
//
// A request that is not a batch and cannot be decoded at all is an error.
func FromHTTP(h http.Header, body []byte, maxBatch int) (Request, error) {
	if cehttp.IsHTTPBatch(h) {
		return fromBatch(body, maxBatch)
	}
	if h.Get("X-Kafka-Offset") != "" || h.Get("X-Topic") != "" {
		it := fromConnector(h, body)
		return Request{Items: []Item{it}}, it.Err
	}
	msg := cehttp.NewMessage(h, io.NopCloser(bytes.NewReader(body)))
	switch msg.ReadEncoding() {
	case binding.EncodingBinary:
		if it, ok := fastBinary(msg); ok {
			return Request{Items: []Item{it}}, it.Err
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
		err = bad("malformed CloudEvent: %s", oneLine(err))
		return Request{Items: []Item{{Err: err}}}, err
	}
	it := FromCloudEvent(*e)
	return Request{Items: []Item{it}}, it.Err
}

func fromBatch(body []byte, maxBatch int) (Request, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return Request{Batch: true}, bad("batch is not a JSON array of CloudEvents: %s", oneLine(err))
	}
	if len(raws) == 0 {
		return Request{Batch: true}, bad("batch is empty")
	}
	if len(raws) > maxBatch {
		return Request{Batch: true}, bad("batch has %d events, more than the limit of %d (MAX_BATCH)", len(raws), maxBatch)
	}
	r := Request{Batch: true, Items: make([]Item, len(raws))}
	for i, raw := range raws {
		var e ce.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			r.Items[i] = Item{Ref: "#" + strconv.Itoa(i), Err: bad("event %d is not a valid CloudEvent: %s", i, oneLine(err))}
			continue
		}
		r.Items[i] = FromCloudEvent(e)
	}
	return r, nil
}

// fromConnector decodes the OpenFaaS kafka-connector's form: the record value
// as the body and each record header as X-Kafka-<header>.
func fromConnector(h http.Header, body []byte) Item {
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
	return fromRecord(topic, h.Get("X-Kafka-Partition"), h.Get("X-Kafka-Offset"),
		kafka_sarama.NewMessage(body, string(headers["content-type"]), headers))
}

// FromKafka decodes a consumed Kafka record: a CloudEvent in binary or
// structured mode, or a plain seed line, which gets the id
// "<topic>/<partition>/<offset>".
func FromKafka(cm *sarama.ConsumerMessage) Item {
	// The fast path reads the record's own headers (NewMessageFromConsumerMessage
	// also adds the kafkatopic, kafkapartition and kafkaoffset extensions,
	// which decoding ignores); the full path gets the message exactly as the
	// SDK builds it.
	var contentType string
	headers := make(map[string][]byte, len(cm.Headers))
	for _, h := range cm.Headers {
		k := strings.ToLower(string(h.Key))
		if k == "content-type" {
			contentType = string(h.Value)
		}
		headers[k] = h.Value
	}
	if m := kafka_sarama.NewMessage(cm.Value, contentType, headers); m.ReadEncoding() == binding.EncodingBinary {
		if it, ok := fastBinary(m); ok {
			return it
		}
	}
	return fromRecord(cm.Topic, strconv.Itoa(int(cm.Partition)), strconv.FormatInt(cm.Offset, 10),
		kafka_sarama.NewMessageFromConsumerMessage(cm))
}

func fromRecord(topic, partition, offset string, m *kafka_sarama.Message) Item {
	ref := func() string { return topic + "/" + partition + "/" + offset }
	if m.ReadEncoding() != binding.EncodingUnknown {
		e, err := binding.ToEvent(context.Background(), m)
		if err != nil {
			return Item{Ref: ref(), Err: bad("malformed CloudEvent: %s", oneLine(err))}
		}
		return FromCloudEvent(*e)
	}
	t, err := ParseLine(string(m.Value))
	if err != nil {
		return Item{Ref: ref(), Err: err}
	}
	t.Source = "kafka://" + topic
	t.ID = partition + "/" + offset
	return Item{Ref: ref(), Transfer: t, Err: t.Validate()}
}

// fastBinary decodes the common binary-mode event (as the generator and
// Knative send it) through the SDK's binary reader straight into the
// attributes, without building an event.Event; ok is false when the event
// needs the full path (binding.ToEvent, then FromCloudEvent), which gives
// the same answer more slowly.
func fastBinary(m interface {
	ReadBinary(context.Context, binding.BinaryWriter) error
}) (it Item, ok bool) {
	var w binaryAttrs
	if m.ReadBinary(context.Background(), &w) != nil || !w.plain() {
		return Item{}, false
	}
	return fromAttrs(w.a), true
}

// binaryAttrs is a binding.BinaryWriter that keeps the attributes the
// decoder needs. It accepts only what it can judge exactly as
// event.Validate would (the context attributes id, source, type, time,
// datacontenttype, and the extensions fintrans and the Kafka binding set);
// for anything else plain reports false and the caller decodes the record
// through binding.ToEvent, so both paths give the same answer.
type binaryAttrs struct {
	a     attrs
	other bool // something only the full decoding judges
	hasCT bool
}

func (w *binaryAttrs) Start(context.Context) error { return nil }
func (w *binaryAttrs) End(context.Context) error   { return nil }

func (w *binaryAttrs) SetAttribute(attr spec.Attribute, value any) error {
	s, ok := value.(string)
	if !ok {
		w.other = true
		return nil
	}
	switch attr.Kind() {
	case spec.SpecVersion: // the message already knows its version
	case spec.ID:
		w.a.id = s
	case spec.Source:
		src, ok := sourceURIRef(s)
		if !ok {
			w.other = true
			return nil
		}
		w.a.source = src
	case spec.Type:
		w.a.typ = s
	case spec.Time:
		t, err := types.ParseTime(s)
		if err != nil {
			w.other = true
			return nil
		}
		w.a.time = t
	case spec.DataContentType:
		w.a.contentType, w.hasCT = s, true
	default:
		w.other = true
	}
	return nil
}

func (w *binaryAttrs) SetExtension(name string, _ any) error {
	switch name {
	case PartitionKey, "kafkaoffset", "kafkapartition", "kafkatopic":
	default:
		w.other = true
	}
	return nil
}

func (w *binaryAttrs) SetData(r io.Reader) error {
	if b, ok := r.(*bytes.Buffer); ok {
		w.a.data = b.Bytes()
		return nil
	}
	d, err := io.ReadAll(r)
	w.a.data = d
	return err
}

// lastSource caches the last source read and its URI-reference form: a
// stream's events come from few producers, and parsing the same URI for
// every event is a tenth of the decoding.
var lastSource atomic.Pointer[[2]string]

// sourceURIRef is the source as event.Event holds it (parsed as a
// URI-reference and written back), and whether it parses.
func sourceURIRef(s string) (string, bool) {
	if c := lastSource.Load(); c != nil && c[0] == s {
		return c[1], true
	}
	u := types.ParseURIRef(s)
	if u == nil {
		return "", false
	}
	lastSource.Store(&[2]string{s, u.String()})
	return u.String(), true
}

// plain reports whether the event is one the fast path judges: nothing
// else than it knows, and valid as event.Validate sees it.
func (w *binaryAttrs) plain() bool {
	if w.other || strings.TrimSpace(w.a.id) == "" || strings.TrimSpace(w.a.source) == "" || strings.TrimSpace(w.a.typ) == "" {
		return false
	}
	if w.hasCT && w.a.contentType != "application/json" {
		if _, _, err := mime.ParseMediaType(strings.TrimSpace(w.a.contentType)); err != nil {
			return false
		}
	}
	return true
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
			return Request{Items: []Item{{Err: err}}}, err
		}
	}
	var lines []string
	for _, l := range strings.Split(string(body), "\n") {
		if l = TrimLine(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		err := bad("empty body: send a CloudEvent or seed lines (time;from;to;amount)")
		return Request{Items: []Item{{Err: err}}}, err
	}
	if len(lines) > maxBatch {
		err := bad("body has %d lines, more than the limit of %d (MAX_BATCH)", len(lines), maxBatch)
		return Request{Batch: true}, err
	}
	r := Request{Batch: len(lines) > 1, Items: make([]Item, len(lines))}
	var seen map[string]int // occurrences of each line so far (bodies of more than one line)
	if len(lines) > 1 {
		seen = make(map[string]int, len(lines))
	}
	for i, l := range lines {
		t, err := ParseLine(l)
		if err == nil {
			t.Source, t.ID = HTTPLineSource, LineID(l, occurrence(seen, l))
			err = t.Validate()
		}
		r.Items[i] = Item{Ref: "line " + strconv.Itoa(i+1), Transfer: t, Err: err}
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

// LineID is the id of the n-th occurrence (from 1) of a seed line (trimmed)
// in one body: the same for the same line at the same occurrence, whatever
// the body holds besides, so a redelivered body counts nothing twice.
func LineID(line string, n int) string {
	sum := sha256.Sum256([]byte(line))
	id := "line-" + hex.EncodeToString(sum[:12])
	if n > 1 {
		id += "-" + strconv.Itoa(n)
	}
	return id
}

// FromCloudEvent turns a CloudEvent into a transfer. An io.fintrans.transaction
// carries JSON data; any other type must carry a seed line as its data (for
// example a dev.knative.kafka.event made from a plain record).
func FromCloudEvent(e ce.Event) Item {
	if err := e.Validate(); err != nil {
		return Item{Ref: e.ID(), Err: bad("invalid CloudEvent: %s", oneLine(err))}
	}
	return fromAttrs(attrs{id: e.ID(), source: e.Source(), typ: e.Type(), contentType: e.DataContentType(),
		time: e.Time(), data: e.Data()})
}

// attrs is what the decoder needs of a valid CloudEvent.
type attrs struct {
	id, source, typ, contentType string
	time                         time.Time
	data                         []byte
}

func fromAttrs(a attrs) Item {
	it := Item{Ref: a.id}
	var t Transfer
	var err error
	if a.typ == TransactionType {
		t, err = transferData(a)
	} else {
		t, err = lineData(a)
	}
	if err != nil {
		it.Err = err
		return it
	}
	t.Source, t.ID = a.source, a.id
	it.Transfer, it.Err = t, t.Validate()
	return it
}

// transferJSON is the data of an io.fintrans.transaction.
type transferJSON struct {
	From   *Account     `json:"from"`
	To     *Account     `json:"to"`
	Amount *money.Cents `json:"amount"`
}

func transferData(a attrs) (Transfer, error) {
	if ct := a.contentType; ct != "" && ct != "application/json" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return Transfer{}, bad("datacontenttype %q is not application/json", ct)
		}
	}
	if a.time.IsZero() {
		return Transfer{}, bad("time is missing: a transaction needs the time it happened")
	}
	if from, to, amount, ok := fastTransferJSON(a.data); ok {
		return Transfer{Time: a.time.UTC(), From: from, To: to, Amount: amount}, nil
	}
	// The fast path takes only plain, valid, duplicate-free data; anything
	// else is checked for what encoding/json would repair or resolve.
	if err := checkStrictJSON(a.data); err != nil {
		return Transfer{}, err
	}
	var d transferJSON
	if err := json.Unmarshal(a.data, &d); err != nil {
		return Transfer{}, bad("data is not a transfer {\"from\",\"to\",\"amount\"}: %s", dataError(err))
	}
	switch {
	case d.From == nil:
		return Transfer{}, bad("from is missing")
	case d.To == nil:
		return Transfer{}, bad("to is missing")
	case d.Amount == nil:
		return Transfer{}, bad("amount is missing")
	}
	return Transfer{Time: a.time.UTC(), From: string(*d.From), To: string(*d.To), Amount: *d.Amount}, nil
}

func lineData(a attrs) (Transfer, error) {
	data := bytes.Trim(a.data, lineSpace)
	if len(data) > 0 && data[0] == '"' {
		if err := checkStrictJSON(data); err != nil {
			return Transfer{}, err
		}
		var s string
		if json.Unmarshal(data, &s) == nil {
			data = []byte(s)
		}
	}
	t, err := ParseLine(string(data))
	if err != nil {
		return Transfer{}, bad("event type %q is not %s and its data is not a seed line: %s", a.typ, TransactionType, err)
	}
	return t, nil
}

// Account is an account id read from JSON: a string, or an integer read as
// its decimal text.
type Account string

func (a *Account) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		// Without escapes, valid UTF-8 reads as itself (the decoder has
		// already checked that b is a JSON string).
		if len(b) >= 2 && bytes.IndexByte(b[1:len(b)-1], '\\') < 0 && utf8.Valid(b[1:len(b)-1]) {
			*a = Account(b[1 : len(b)-1])
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Account(s)
		return nil
	}
	s := string(b)
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return errors.New("account id must be a string or an integer")
	}
	*a = Account(s)
	return nil
}

func dataError(err error) string {
	var ue *json.UnmarshalTypeError
	if errors.As(err, &ue) && ue.Field != "" {
		return fmt.Sprintf("%s has the wrong type", ue.Field)
	}
	return oneLine(err)
}

// ParseLine reads the seed's line format "time;from;to;amount", with the time
// in RFC 3339 ("2017-07-23T01:06:47Z") or the seed's RFC 850 form
// ("Sunday, 23-Jul-17 01:06:47 UTC").
func ParseLine(line string) (Transfer, error) {
	line = TrimLine(line)
	parts := strings.Split(line, ";")
	if len(parts) != 4 {
		return Transfer{}, bad("line %q is not time;from;to;amount", clip(line))
	}
	for i := range parts {
		parts[i] = TrimLine(parts[i])
	}
	ts, err := ParseTime(parts[0])
	if err != nil {
		return Transfer{}, err
	}
	amt, err := money.Parse(parts[3])
	if err != nil {
		return Transfer{}, bad("%s", err)
	}
	return Transfer{Time: ts, From: parts[1], To: parts[2], Amount: amt}, nil
}

// lineSpace is the white space trimmed around seed lines and their fields:
// ASCII only, so that no character an account id may hold (U+00A0, U+2028)
// is cut off, and no control character (U+0085) is silently dropped.
const lineSpace = " \t\r\n\v\f"

// TrimLine trims ASCII white space around a seed line or field.
func TrimLine(s string) string { return strings.Trim(s, lineSpace) }

// ParseTime reads RFC 3339 or the seed's RFC 850 time.
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), checkTime(t)
	}
	if t, err := time.Parse(time.RFC850, s); err == nil {
		return t.UTC(), checkTime(t)
	}
	return time.Time{}, bad("time %q is neither RFC 3339 (2017-07-23T01:06:47Z) nor the seed's form (Sunday, 23-Jul-17 01:06:47 UTC)", clip(s))
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
