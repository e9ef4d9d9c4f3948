//go:build linux

package redistest

import "syscall"

// sysProcAttr makes the kernel SIGKILL the server when the test binary dies
// (see spawn for why the forking thread matters).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
