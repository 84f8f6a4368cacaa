package postfix

import (
	"fmt"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/postern/postern/bench/nullserver"
)

// TestRelay starts an instance that relays everything to the null MX, sends
// it a message over SMTP, and checks that the message leaves its queue for
// the null MX, and that stopping the instance leaves no process of it.
func TestRelay(t *testing.T) {
	null := nullserver.New()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go null.ServeSMTP(ln)
	defer null.Close()

	dir := filepath.Join(OpenTempDir(t), "postfix")
	in, err := Start(Config{Dir: dir, Main: []string{RelayHost(ln.Addr().String())}})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	pid, master := in.Pid(), in.MasterPid()
	if master <= 1 || master == pid {
		t.Fatalf("master pid %d (postfix command %d)", master, pid)
	}

	msg := "From: a@example.org\r\nTo: b@example.net\r\nSubject: hello\r\n\r\nHello.\r\n"
	if err := smtp.SendMail(in.SMTPAddr, nil, "a@example.org", []string{"b@example.net"}, []byte(msg)); err != nil {
		t.Fatalf("send: %v\n%s", err, in.Log())
	}
	if _, err := in.WaitEmpty(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n := null.Messages.Load(); n != 1 {
		t.Fatalf("the null MX got %d messages\n%s", n, in.Log())
	}
	if !strings.Contains(in.Log(), "status=sent") {
		t.Errorf("no delivery in the log:\n%s", in.Log())
	}

	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	// The master is gone (reaped: Stop waited for it) and nothing answers
	// on its address.
	for _, p := range []int{pid, master} {
		if err := syscall.Kill(p, 0); err == nil && !zombie(p) {
			t.Errorf("pid %d still runs", p)
		}
	}
	if c, err := net.DialTimeout("tcp", in.SMTPAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still answers after Stop", in.SMTPAddr)
	}
}

// zombie reports whether pid has exited and waits for its parent (init,
// for the master, whose parent exited first) to reap it.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}
