package cloudevent

import (
	"unicode/utf8"

	"github.com/fintrans/fintrans/shared/money"
)

// fastTransferJSON reads the common transfer data {"from":..,"to":..,"amount":..}
// (keys exactly so, each once, in any order; accounts as plain strings or
// integers, the amount as a plain string or a number without exponent) with
// no reflection. Anything else, and anything invalid, reports ok false: the
// caller then decodes with encoding/json, which gives the same transfer or
// the reason it is refused. FuzzTransferJSON holds the two to the same answer.
func fastTransferJSON(b []byte) (from, to string, amount money.Cents, ok bool) {
	var seen [3]bool
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", "", 0, false
	}
	i = skipWS(b, i+1)
	for {
		key, next, good := plainString(b, i)
		if !good {
			return "", "", 0, false
		}
		i = skipWS(b, next)
		if i >= len(b) || b[i] != ':' {
			return "", "", 0, false
		}
		i = skipWS(b, i+1)
		var k int
		switch key {
		case "from":
			k = 0
		case "to":
			k = 1
		case "amount":
			k = 2
		default:
			return "", "", 0, false
		}
		if seen[k] {
			return "", "", 0, false
		}
		seen[k] = true
		var text string
		if i < len(b) && b[i] == '"' {
			text, next, good = plainString(b, i)
		} else {
			text, next, good = plainNumber(b, i, k == 2)
		}
		if !good {
			return "", "", 0, false
		}
		switch k {
		case 0:
			from = text
		case 1:
			to = text
		case 2:
			a, err := money.Parse(text)
			if err != nil {
				return "", "", 0, false
			}
			amount = a
		}
		i = skipWS(b, next)
		if i >= len(b) {
			return "", "", 0, false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return "", "", 0, false
		}
		i = skipWS(b, i+1)
	}
	if skipWS(b, i+1) != len(b) || !seen[0] || !seen[1] || !seen[2] {
		return "", "", 0, false
	}
	return from, to, amount, true
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string starting at b[i] == '"' that has no escape
// and no control character and is valid UTF-8: its content and the index
// after it.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[i+1 : j]
			if !utf8.Valid(s) {
				return "", 0, false
			}
			return string(s), j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

// plainNumber reads a JSON number starting at b[i]: an integer
// -?(0|[1-9][0-9]*), with a fraction .[0-9]+ when frac is allowed, and no
// exponent: its text and the index after it.
func plainNumber(b []byte, i int, frac bool) (string, int, bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		return "", 0, false
	}
	if frac && j < len(b) && b[j] == '.' {
		k := j + 1
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		if k == j+1 {
			return "", 0, false
		}
		j = k
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E' || (b[j] >= '0' && b[j] <= '9')) {
		return "", 0, false
	}
	return string(b[i:j]), j, true
}
