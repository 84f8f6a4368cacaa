package imapserver

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
)

// BenchmarkIMAPLoginLogout measures connect, LOGIN and LOGOUT over loopback
// against the in-process server, with an authenticator that answers at once.
func BenchmarkIMAPLoginLogout(b *testing.B) {
	e := newEnv(b, envOptions{noTailer: true})
	login := "a1 LOGIN " + testUser + " " + testSecret + "\r\na2 LOGOUT\r\n"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			b.Fatal(err)
		}
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		io.WriteString(c, login)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if strings.HasPrefix(l, "a1 ") && !strings.HasPrefix(l, "a1 OK") {
				b.Fatalf("login: %q", l)
			}
			if strings.HasPrefix(l, "a2 ") {
				break
			}
		}
		c.Close()
	}
}
