// Package cloudevent maps CloudEvents onto the domain and back, for every
// transport that carries them (codec/httpreq, codec/kafkarecord): a
// transaction event to a transfer (FromEvent, and the Decoder's fast path
// for binary mode) and a transfer to its event (Transfer); an alert to its
// event (Alert) and back (ToAlert).
package cloudevent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/codec/seedline"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/transfer"
)

// CloudEvent types and sources of fintrans.
const (
	TransactionType = "io.fintrans.transaction"
	FraudType       = "io.fintrans.fraud.detected"
	GeneratorSource = "/fintrans/generator"
	DetectSource    = "/fintrans/detect"
	// PartitionKey is the CloudEvents extension that carries the pair.
	PartitionKey = "partitionkey"
)

var bad = transfer.Bad

// Transfer is the io.fintrans.transaction event of a transfer.
func Transfer(t transfer.Transfer) ce.Event {
	e := ce.New(ce.CloudEventsVersionV1)
	e.SetID(t.ID)
	e.SetType(TransactionType)
	e.SetSource(t.Source)
	e.SetTime(t.Time)
	e.SetExtension(PartitionKey, transfer.PairKey(t.From, t.To))
	// Marshalling this struct cannot fail.
	_ = e.SetData(ce.ApplicationJSON, transferOut{From: t.From, To: t.To, Amount: t.Amount})
	return e
}

type transferOut struct {
	From   string      `json:"from"`
	To     string      `json:"to"`
	Amount money.Cents `json:"amount"`
}

// Alert builds the io.fintrans.fraud.detected event of an alert.
func Alert(a transfer.Alert) ce.Event {
	e := ce.New(ce.CloudEventsVersionV1)
	e.SetID(a.ID())
	e.SetType(FraudType)
	e.SetSource(DetectSource)
	e.SetTime(a.Time.UTC())
	// Set the subject as it is: SetSubject trims white space, and account
	// ids may begin or end with characters Unicode counts as space (U+00A0,
	// U+2028), which would make the subject name another pair.
	subject := a.GroupKey()
	if ec, ok := e.Context.(*ce.EventContextV1); ok {
		ec.Subject = &subject
	} else {
		e.SetSubject(subject)
	}
	e.SetExtension(PartitionKey, subject)
	a.WindowStart, a.WindowEnd = a.WindowStart.UTC(), a.WindowEnd.UTC()
	if a.Transactions == nil {
		a.Transactions = []transfer.AlertTransfer{}
	}
	// The data as SetData would encode it (not as a []byte, which SetData
	// would send base64), by appendAlert.
	e.SetDataContentType(ce.ApplicationJSON)
	e.DataEncoded, e.DataBase64 = appendAlert(make([]byte, 0, 512), a), false
	return e
}

// ToAlert reads an alert back from its event (the viewer's side).
func ToAlert(e ce.Event) (transfer.Alert, error) {
	if e.Type() != FraudType {
		return transfer.Alert{}, bad("event type %q is not %s", e.Type(), FraudType)
	}
	var a transfer.Alert
	if err := json.Unmarshal(e.Data(), &a); err != nil {
		return transfer.Alert{}, bad("fraud event %s has malformed data: %s", e.ID(), transfer.OneLine(err.Error()))
	}
	// An alert of before rules has no rule, groupBy or aggregate: the
	// seed's rule, a pair, a sum.
	if a.GroupBy == "" {
		a.GroupBy = transfer.GroupPair
	}
	if a.Aggregate == "" {
		a.Aggregate = "sum"
		if a.Value == (transfer.Measure{}) {
			a.Value = transfer.Cents(a.Total)
		}
	}
	// A whole number reads as a count; a sum's is cents.
	for _, m := range []*transfer.Measure{&a.Value, &a.Threshold} {
		if a.Aggregate == "sum" && m.Count {
			*m = transfer.Cents(money.Cents(m.N * 100))
		}
		if a.Aggregate == "count" && !m.Count {
			return transfer.Alert{}, bad("fraud event %s: a count's value and threshold are whole numbers", e.ID())
		}
	}
	missing := a.WindowStart.IsZero()
	switch a.GroupBy {
	case transfer.GroupPair:
		missing = missing || a.From == "" || a.To == ""
	case transfer.GroupFrom:
		missing = missing || a.From == ""
	case transfer.GroupTo:
		missing = missing || a.To == ""
	default:
		return transfer.Alert{}, bad("fraud event %s: groupBy %q is not pair, from or to", e.ID(), a.GroupBy)
	}
	if missing {
		return transfer.Alert{}, bad("fraud event %s lacks its group (from and/or to) or windowStart", e.ID())
	}
	a.Time = e.Time()
	return a, nil
}

// FromEvent turns a CloudEvent into a transfer. An io.fintrans.transaction
// carries JSON data; any other type must carry a seed line as its data (for
// example a dev.knative.kafka.event made from a plain record).
func FromEvent(e ce.Event) transfer.Item {
	if err := e.Validate(); err != nil {
		return transfer.Item{Ref: e.ID(), Err: bad("invalid CloudEvent: %s", transfer.OneLine(err.Error()))}
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

func fromAttrs(a attrs) transfer.Item {
	it := transfer.Item{Ref: a.id}
	var t transfer.Transfer
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

func transferData(a attrs) (transfer.Transfer, error) {
	if ct := a.contentType; ct != "" && ct != "application/json" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return transfer.Transfer{}, bad("datacontenttype %q is not application/json", ct)
		}
	}
	if a.time.IsZero() {
		return transfer.Transfer{}, bad("time is missing: a transaction needs the time it happened")
	}
	if from, to, amount, ok := fastTransferJSON(a.data); ok {
		return transfer.Transfer{Time: a.time.UTC(), From: from, To: to, Amount: amount}, nil
	}
	// The fast path takes only plain, valid, duplicate-free data; anything
	// else is checked for what encoding/json would repair or resolve.
	if err := checkStrictJSON(a.data); err != nil {
		return transfer.Transfer{}, err
	}
	var d transferJSON
	if err := json.Unmarshal(a.data, &d); err != nil {
		return transfer.Transfer{}, bad("data is not a transfer {\"from\",\"to\",\"amount\"}: %s", dataError(err))
	}
	switch {
	case d.From == nil:
		return transfer.Transfer{}, bad("from is missing")
	case d.To == nil:
		return transfer.Transfer{}, bad("to is missing")
	case d.Amount == nil:
		return transfer.Transfer{}, bad("amount is missing")
	}
	return transfer.Transfer{Time: a.time.UTC(), From: string(*d.From), To: string(*d.To), Amount: *d.Amount}, nil
}

func lineData(a attrs) (transfer.Transfer, error) {
	data := bytes.Trim(a.data, seedline.Space)
	if len(data) > 0 && data[0] == '"' {
		if err := checkStrictJSON(data); err != nil {
			return transfer.Transfer{}, err
		}
		var s string
		if json.Unmarshal(data, &s) == nil {
			data = []byte(s)
		}
	}
	t, err := seedline.Parse(string(data))
	if err != nil {
		return transfer.Transfer{}, bad("event type %q is not %s and its data is not a seed line: %s", a.typ, TransactionType, err)
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
	return transfer.OneLine(err.Error())
}
