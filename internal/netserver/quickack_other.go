//go:build !linux

package netserver

import "syscall"

// quickAck does nothing: TCP_QUICKACK is Linux's.
func quickAck(syscall.Conn) {}
