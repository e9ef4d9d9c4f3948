//go:build linux

package redisproc

import "syscall"

// sysProcAttr makes the kernel SIGKILL the server when this process dies
// (see spawn for why the forking thread matters), and puts the server in a
// process group of its own, so that a Ctrl-C at the terminal (SIGINT to the
// foreground group) stops the program, which then closes the server in
// order, instead of killing the server under a program that is still
// draining.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
