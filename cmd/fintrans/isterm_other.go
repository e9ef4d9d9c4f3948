//go:build !linux

package main

import "os"

// isTerminal reports whether f is a character device other than a null
// device (an approximation of a terminal where TCGETS is unavailable).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0 && st.Name() != os.DevNull
}
