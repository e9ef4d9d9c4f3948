package transfer

import "fmt"

// Status is what became of a transfer: the window store's answer (Counted,
// Duplicate, Late) or its refusal before the store (Invalid). In JSON and
// logs it is its name.
type Status int

const (
	Counted Status = iota + 1
	Duplicate
	Late
	Invalid
)

var statusNames = [...]string{Counted: "counted", Duplicate: "duplicate", Late: "late", Invalid: "invalid"}

func (s Status) String() string {
	if s > 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// MarshalText writes the status's name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a status's name.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if n != "" && n == string(b) {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("unknown status %q", b)
}
