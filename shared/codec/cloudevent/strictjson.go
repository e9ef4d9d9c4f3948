package cloudevent

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/fintrans/fintrans/shared/transfer"
)

// checkStrictJSON refuses what encoding/json would silently repair or
// resolve in transfer data (SPEC section 2: refused, never repaired):
//   - invalid UTF-8 (encoding/json replaces it with U+FFFD, so two different
//     account ids would merge into one);
//   - a \u escape of an unpaired UTF-16 surrogate (replaced by U+FFFD too);
//   - a key twice in one object (encoding/json keeps the last). At the top
//     level, keys that encoding/json matches to the same field of a transfer
//     ("amount", "Amount", "AMOUNT": it matches names without regard to case)
//     count as the same key.
//
// Malformed JSON passes: the caller's decoding names that error.
func checkStrictJSON(b []byte) error {
	if !utf8.Valid(b) {
		return bad("data is not valid UTF-8 (refused, never repaired)")
	}
	if err := checkSurrogates(b); err != nil {
		return err
	}
	return checkDuplicateKeys(b)
}

// checkSurrogates finds \u escapes of unpaired UTF-16 surrogates in the
// strings of a JSON text (backslashes occur nowhere else in valid JSON).
func checkSurrogates(b []byte) error {
	if bytes.IndexByte(b, '\\') < 0 {
		return nil
	}
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 >= len(b) {
				return nil
			}
			if b[i+1] != 'u' {
				i++ // the escaped character
				continue
			}
			r, ok := hex4(b, i+2)
			if !ok {
				return nil // malformed: the decoder says so
			}
			i += 5
			switch {
			case utf16.IsSurrogate(r) && r < 0xdc00: // high: a low one must follow
				if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
					if lo, ok := hex4(b, i+3); ok && lo >= 0xdc00 && lo <= 0xdfff {
						i += 6
						continue
					}
				}
				return bad("data holds the escape \\u%04x, half of a UTF-16 surrogate pair without its other half (refused, never repaired)", r)
			case utf16.IsSurrogate(r):
				return bad("data holds the escape \\u%04x, half of a UTF-16 surrogate pair without its other half (refused, never repaired)", r)
			}
		}
	}
	return nil
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// transferFields are the keys of transfer data, as encoding/json matches
// them to transferJSON's fields.
var transferFields = [...]string{"from", "to", "amount"}

// checkDuplicateKeys walks the JSON text with encoding/json's tokenizer
// (keys compared after unescaping, so "\u0061mount" is "amount") and refuses
// any object that holds a key twice.
func checkDuplicateKeys(b []byte) error {
	type frame struct {
		object, wantKey, top bool
		keys                 map[string]struct{}
	}
	var stack []frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF || err != nil {
			return nil // the end, or malformed: the decoder says so
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			key, _ := tok.(string)
			name := key
			if stack[n-1].top {
				for _, f := range transferFields {
					if strings.EqualFold(key, f) {
						name = f
					}
				}
			}
			if _, dup := stack[n-1].keys[name]; dup {
				if name != key {
					return bad("data has the key %q twice (as %q): duplicate keys are refused", name, key)
				}
				return bad("data has the key %q twice: duplicate keys are refused", transfer.Clip(key))
			}
			stack[n-1].keys[name] = struct{}{}
			stack[n-1].wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, wantKey: true, top: len(stack) == 0, keys: map[string]struct{}{}})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim(']'):
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			valueDone()
		default:
			valueDone()
		}
	}
}
