package cloudevent

import (
	"bytes"
	"context"
	"io"
	"mime"
	"strings"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/fintrans/fintrans/shared/transfer"
)

// Decoder decodes binary-mode events fast. Its zero value is ready; it is
// safe for concurrent use. It keeps the last source read and its
// URI-reference form: a stream's events come from few producers, and
// parsing the same URI for every event is a tenth of the decoding.
type Decoder struct {
	lastSource atomic.Pointer[[2]string]
}

// BinaryMessage is a binding message that reads in binary mode (an HTTP
// request's or a Kafka record's).
type BinaryMessage interface {
	ReadBinary(context.Context, binding.BinaryWriter) error
}

// FastBinary decodes the common binary-mode event (as the generator and
// Knative send it) through the SDK's binary reader straight into the
// attributes, without building an event.Event; ok is false when the event
// needs the full path (binding.ToEvent, then FromEvent), which gives the same
// answer more slowly.
func (d *Decoder) FastBinary(m BinaryMessage) (it transfer.Item, ok bool) {
	w := binaryAttrs{d: d}
	if m.ReadBinary(context.Background(), &w) != nil || !w.plain() {
		return transfer.Item{}, false
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
	d     *Decoder
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
		src, ok := w.d.sourceURIRef(s)
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

// sourceURIRef is the source as event.Event holds it (parsed as a
// URI-reference and written back), and whether it parses.
func (d *Decoder) sourceURIRef(s string) (string, bool) {
	if c := d.lastSource.Load(); c != nil && c[0] == s {
		return c[1], true
	}
	u := types.ParseURIRef(s)
	if u == nil {
		return "", false
	}
	d.lastSource.Store(&[2]string{s, u.String()})
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
