//go:build !linux

package redisproc

import "syscall"

// sysProcAttr has no parent-death signal outside Linux; servers are still
// killed by Close, but a crashed program may leak them.
func sysProcAttr() *syscall.SysProcAttr {
	return nil
}
