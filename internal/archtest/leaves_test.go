package archtest

import (
	"strings"
	"testing"
)

// TestLeaves: sender authentication, DKIM signing, the rspamd client and
// the SMTP delivery client know no server and no store of ours; cmd/postern
// adapts them, and the servers declare the interfaces they need (IMAP's
// JunkLearner) instead of importing the client.
func TestLeaves(t *testing.T) {
	for _, leaf := range []string{"internal/mailauth", "internal/rspamd", "internal/delivery", "internal/dkim"} {
		for _, d := range deps(t, leaf) {
			if strings.HasPrefix(d, mod) && d != mod+leaf {
				t.Errorf("%s depends on %s: it stands alone", leaf, d)
			}
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
