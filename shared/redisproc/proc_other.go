//go:build !linux

package redisproc

import "syscall"

// sysProcAttr has no parent-death signal outside Linux; servers are still
// killed by Close, but a crashed program may leak them. The server gets a
// process group of its own, so a Ctrl-C at the terminal reaches only the
// program, which closes the server in order.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
