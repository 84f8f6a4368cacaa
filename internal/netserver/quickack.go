package netserver

import (
	"net"
	"syscall"
)

// QuickAck asks the kernel to acknowledge at once what arrived on c's TCP
// socket, and what arrives until the server next writes, instead of
// delaying the ACK. A server calls it when it waits for the rest of a
// request the client has begun to send (an IMAP literal and the line after
// it): a client that keeps Nagle's algorithm on (no TCP_NODELAY; python's
// imaplib, for one) holds a small write, such as the CRLF after a literal,
// until everything it sent before is acknowledged, and a Linux server that
// has just answered (the "+" that asked for the literal) is in its
// interactive mode, where it delays that ACK by 40 ms or more, having
// nothing to send it with. Dovecot sets TCP_QUICKACK after every write for
// the same reason. The option does not stay: the next write puts the
// socket back into delaying ACKs, so it is set before each read that waits.
//
// c may be wrapped (TLS, the connection limiter, PROXY protocol): QuickAck
// looks through wrappers that have NetConn. It does nothing for sockets that
// are not TCP and on systems without the option.
func QuickAck(c net.Conn) {
	if sc, ok := socketOf(c).(syscall.Conn); ok {
		quickAck(sc)
	}
}

// socketOf returns the connection beneath c's wrappers.
func socketOf(c net.Conn) net.Conn {
	for range 8 {
		if _, ok := c.(syscall.Conn); ok {
			return c
		}
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return c
		}
		c = w.NetConn()
	}
	return c
}
