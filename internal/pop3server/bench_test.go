package pop3server

import (
	"bufio"
	"net"
	"strings"
	"testing"
)

// BenchmarkPOP3UserPassQuit measures one whole POP3 session over loopback:
// connect, greeting, USER, PASS (a fake authenticator that answers at once),
// the INBOX snapshot from SQLite, QUIT. It measures the server's own cost, not
// password hashing or throttling.
func BenchmarkPOP3UserPassQuit(b *testing.B) {
	e := newEnv(b, []string{msg1, msg2})
	script := "USER " + testUser + "\r\nPASS " + testPass + "\r\nQUIT\r\n"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		conn, err := net.Dial("tcp", e.addr)
		if err != nil {
			b.Fatal(err)
		}
		r := bufio.NewReader(conn)
		expect := func(prefix string) {
			line, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, prefix) {
				b.Fatalf("got %q, %v; want %s", line, err, prefix)
			}
		}
		expect("+OK ")
		if _, err := conn.Write([]byte(script)); err != nil {
			b.Fatal(err)
		}
		expect("+OK Send")
		expect("+OK Logged in, 2 messages")
		expect("+OK Bye")
		conn.Close()
	}
}
