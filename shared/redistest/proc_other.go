//go:build !linux

package redistest

import "syscall"

// sysProcAttr has no parent-death signal outside Linux; servers are still
// killed by t.Cleanup, but a crashed test binary may leak them.
func sysProcAttr() *syscall.SysProcAttr {
	return nil
}
