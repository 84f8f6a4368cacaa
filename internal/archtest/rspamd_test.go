package archtest

import (
	"strings"
	"testing"
)

// TestSpamFilterClientStandsAlone: internal/rspamd knows no server and no
// store; the MX listener and IMAP declare what they need of it.
func TestSpamFilterClientStandsAlone(t *testing.T) {
	for _, d := range deps(t, "internal/rspamd") {
		if strings.HasPrefix(d, mod) && d != mod+"internal/rspamd" {
			t.Errorf("internal/rspamd depends on %s: it stands alone", d)
		}
	}
	for _, pkg := range []string{"internal/imapserver", "internal/smtpserver"} {
		for _, d := range deps(t, pkg) {
			if d == mod+"internal/rspamd" {
				t.Errorf("%s depends on internal/rspamd: it declares the interface it needs", pkg)
			}
		}
	}
}
