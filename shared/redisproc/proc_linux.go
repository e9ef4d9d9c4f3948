//go:build linux

package redisproc

import "syscall"

// sysProcAttr makes the kernel SIGKILL the server when this process dies
// (see spawn for why the forking thread matters).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
