// Package transfertest is test tooling (no product code imports it): test
// data about transfers shared by the tests of several packages.
package transfertest

import "strings"

// WorstAccountIDs are account ids at the edge of what SPEC section 2 allows
// (1 to 128 bytes of valid UTF-8 without control characters): quotes, spaces,
// the separators of subjects and partition keys, percent escapes, bidi
// controls, line and paragraph separators, no-break spaces, U+FFFD itself,
// astral characters, and 128 bytes of one- to four-byte characters.
func WorstAccountIDs() []string {
	return []string{
		`Zürich "quoted" 'x'`, "a->b", "->", "from:x", "to:y", "a b", "\u202eevil\u202c", "\u2028\u2029",
		"%41%0d%0a", "%", "\U0001F600", strings.Repeat("x", 128), strings.Repeat("é", 64),
		strings.Repeat("\u202e", 42) + "xy", strings.Repeat("\U0001F600", 32), "{tag}", "\ufffd",
		"\u00a0x\u00a0", "ł\u00a0ø", `\`, `"`, "<script>", "=?utf-8?q?x?=",
	}
}
