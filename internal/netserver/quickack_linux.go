package netserver

import "syscall"

func quickAck(sc syscall.Conn) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		// An error (a socket that is not TCP, one already closed) leaves
		// the ACKs delayed, which costs time, not correctness.
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
