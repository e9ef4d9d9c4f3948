//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package main

// ownTerminal does nothing where process groups are not available.
func ownTerminal() (restore func()) { return func() {} }
