package smtpserver

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Real third-party clients against the server on loopback: Python's smtplib
// and swaks. Their messages must land in the recipient's INBOX in the store.

const smtplibScript = `
import smtplib, ssl, sys
from email.message import EmailMessage
host, port, user, pw, rcpt, mode, cafile = sys.argv[1:8]
transport, mech = mode.split("-")
ctx = ssl.create_default_context(cafile=cafile)
if transport == "ssl":
    s = smtplib.SMTP_SSL(host, int(port), timeout=20, context=ctx)
else:
    s = smtplib.SMTP(host, int(port), timeout=20)
s.ehlo("pyclient.test")
if transport == "starttls":
    s.starttls(context=ctx)
    s.ehlo("pyclient.test")
s.user, s.password = user, pw
try:
    if mech == "PLAIN":
        s.auth("PLAIN", s.auth_plain)
    elif mech == "LOGINIR":
        s.auth("LOGIN", s.auth_login, initial_response_ok=True)
    else:
        s.auth("LOGIN", s.auth_login, initial_response_ok=False)
except smtplib.SMTPAuthenticationError as e:
    print("AUTHFAIL %d %s" % (e.smtp_code, e.smtp_error.decode()))
    sys.exit(3)
msg = EmailMessage()
msg["From"], msg["To"], msg["Subject"] = user, rcpt, "via smtplib " + mode
msg.set_content("Hello from Python.\n.a line with a leading dot\n")
s.send_message(msg)
s.quit()
print("SENT")
`

func runClient(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (apt-get install -y %s): %v", name, name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	return string(out), err
}

func TestPythonSmtplib(t *testing.T) {
	e := newEnv(t)
	for _, mode := range []string{"plain-PLAIN", "plain-LOGIN", "plain-LOGINIR", "starttls-PLAIN", "starttls-LOGIN", "ssl-PLAIN"} {
		t.Run(mode, func(t *testing.T) {
			addr := e.addr
			if strings.HasPrefix(mode, "ssl") {
				addr = e.tlsAddr
			}
			host, port, _ := net.SplitHostPort(addr)
			out, err := runClient(t, "python3", "-c", smtplibScript, host, port, e.alice.Email, alicePass, e.bob.Email, mode, e.certFile)
			if err != nil || !strings.Contains(out, "SENT") {
				t.Fatalf("smtplib: %v\n%s", err, out)
			}
			if !inboxHas(e, "Subject: via smtplib "+mode) {
				t.Fatalf("message not in bob's INBOX")
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		host, port, _ := net.SplitHostPort(e.addr)
		out, _ := runClient(t, "python3", "-c", smtplibScript, host, port, e.alice.Email, "wrong", e.bob.Email, "plain-LOGIN", e.certFile)
		if !strings.Contains(out, "AUTHFAIL 535 5.7.8 Authentication credentials invalid") {
			t.Fatalf("output %q", out)
		}
	})
}

func inboxHas(e *env, s string) bool {
	for _, m := range e.inbox(e.bob) {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

func TestSwaks(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		addr string
		args []string
	}{
		{"auth LOGIN", e.addr, []string{"--auth", "LOGIN"}},
		{"auth PLAIN", e.addr, []string{"--auth", "PLAIN"}},
		{"STARTTLS auth LOGIN", e.addr, []string{"-tls", "--auth", "LOGIN"}},
		{"STARTTLS auth PLAIN", e.addr, []string{"-tls", "--auth", "PLAIN"}},
		{"tls-on-connect", e.tlsAddr, []string{"--tls-on-connect", "--auth", "PLAIN"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			subject := "swaks " + tc.name
			args := append([]string{
				"--server", tc.addr, "--ehlo", "swaks.test", "--timeout", "20",
				"--from", e.alice.Email, "--to", e.bob.Email,
				"--auth-user", e.alice.Email, "--auth-password", alicePass,
				"--header", "Subject: " + subject,
			}, tc.args...)
			out, err := runClient(t, "swaks", args...)
			if err != nil {
				t.Fatalf("swaks: %v\n%s", err, out)
			}
			if !inboxHas(e, "Subject: "+subject) {
				t.Fatalf("message not in bob's INBOX\n%s", out)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		out, err := runClient(t, "swaks", "--server", e.addr, "--ehlo", "swaks.test", "--timeout", "20",
			"--from", e.alice.Email, "--to", e.bob.Email, "--auth", "LOGIN",
			"--auth-user", e.alice.Email, "--auth-password", "wrong")
		if err == nil || !strings.Contains(out, "<** 535 5.7.8 Authentication credentials invalid") {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
	})
}
