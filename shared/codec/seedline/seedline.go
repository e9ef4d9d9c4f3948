// Package seedline is the codec of the seed's line format,
// "time;from;to;amount" (2017-07-23T01:06:47Z;66;26;7810.25): Parse reads a
// line into a transfer, Format writes one. A line has no id of its own: ID
// derives one from its content and its occurrence.
package seedline

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/transfer"
)

// Parse reads the seed's line format "time;from;to;amount", with the time in
// RFC 3339 ("2017-07-23T01:06:47Z") or the seed's RFC 850 form
// ("Sunday, 23-Jul-17 01:06:47 UTC"). Source and ID are left to the caller.
func Parse(line string) (transfer.Transfer, error) {
	line = Trim(line)
	parts := strings.Split(line, ";")
	if len(parts) != 4 {
		return transfer.Transfer{}, transfer.Bad("line %q is not time;from;to;amount", transfer.Clip(line))
	}
	for i := range parts {
		parts[i] = Trim(parts[i])
	}
	ts, err := ParseTime(parts[0])
	if err != nil {
		return transfer.Transfer{}, err
	}
	amt, err := money.Parse(parts[3])
	if err != nil {
		return transfer.Transfer{}, transfer.Bad("%s", err)
	}
	return transfer.Transfer{Time: ts, From: parts[1], To: parts[2], Amount: amt}, nil
}

// Format is the seed's line of a transfer.
func Format(t transfer.Transfer) string {
	return t.Time.UTC().Format(time.RFC3339) + ";" + t.From + ";" + t.To + ";" + t.Amount.String()
}

// Space is the white space trimmed around seed lines and their fields:
// ASCII only, so that no character an account id may hold (U+00A0, U+2028)
// is cut off, and no control character (U+0085) is silently dropped.
const Space = " \t\r\n\v\f"

// Trim trims ASCII white space around a seed line or field.
func Trim(s string) string { return strings.Trim(s, Space) }

// ParseTime reads RFC 3339 or the seed's RFC 850 time.
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), transfer.CheckTime(t)
	}
	if t, err := time.Parse(time.RFC850, s); err == nil {
		return t.UTC(), transfer.CheckTime(t)
	}
	return time.Time{}, transfer.Bad("time %q is neither RFC 3339 (2017-07-23T01:06:47Z) nor the seed's form (Sunday, 23-Jul-17 01:06:47 UTC)", transfer.Clip(s))
}

// ID is the id of the n-th occurrence (from 1) of a seed line (trimmed) in
// one body: the same for the same line at the same occurrence, whatever the
// body holds besides, so a redelivered body counts nothing twice.
func ID(line string, n int) string {
	sum := sha256.Sum256([]byte(line))
	id := "line-" + hex.EncodeToString(sum[:12])
	if n > 1 {
		id += "-" + strconv.Itoa(n)
	}
	return id
}
