//go:build linux || darwin || freebsd || netbsd || openbsd

package main

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// ownTerminal makes this process the terminal's foreground process group,
// so that Ctrl-C (SIGINT) reaches this process alone. `make run` needs it:
// make, which shares the terminal's process group with its recipe, would
// otherwise take the SIGINT too and report "Interrupt" and exit 130 even
// though fintrans stopped cleanly and exited 0. The returned function gives
// the terminal back. Without a terminal on stdin it does nothing.
func ownTerminal() (restore func()) {
	fd := int(os.Stdin.Fd())
	orig, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || orig != syscall.Getpgrp() {
		return func() {} // no terminal, or we run in the background
	}
	if err := syscall.Setpgid(0, 0); err != nil {
		return func() {}
	}
	// A process group that is not in the foreground gets SIGTTOU when it
	// sets the foreground group; ignore it for the two calls.
	signal.Ignore(syscall.SIGTTOU)
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, syscall.Getpgrp()); err != nil {
		_ = syscall.Setpgid(0, orig)
		signal.Reset(syscall.SIGTTOU)
		return func() {}
	}
	return func() {
		_ = unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, orig)
		signal.Reset(syscall.SIGTTOU)
	}
}
