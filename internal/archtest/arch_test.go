// Package archtest checks that dependencies point inward (ARCHITECTURE.md):
// the domain knows no outside package, and no protocol frontend or the web
// UI reaches a store or another frontend.
package archtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/postern/postern/"

// deps returns the packages pkg depends on, directly or not.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", mod+pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestDomainImportsStdlibOnly(t *testing.T) {
	for _, pkg := range []string{"internal/account", "internal/mailstore", "internal/dnsrecords"} {
		for _, d := range deps(t, pkg) {
			inner := d == mod+"internal/account" || d == mod+"internal/mailstore" || d == mod+"internal/dnsrecords"
			if strings.Contains(strings.SplitN(d, "/", 2)[0], ".") && !inner {
				t.Errorf("%s depends on %s: the domain imports the standard library only", pkg, d)
			}
		}
	}
}

func TestFrontendsDoNotImportStores(t *testing.T) {
	frontends := []string{"internal/imapserver", "internal/pop3server", "internal/smtpserver",
		"internal/davserver", "internal/web", "internal/auth", "internal/events"}
	for _, pkg := range frontends {
		for _, d := range deps(t, pkg) {
			if strings.HasPrefix(d, mod+"internal/store") || strings.HasPrefix(d, mod+"cmd/") {
				t.Errorf("%s depends on %s: frontends see stores only through interfaces", pkg, d)
			}
			for _, other := range frontends[:5] {
				if d == mod+other && other != pkg {
					t.Errorf("%s depends on %s: frontends are independent", pkg, d)
				}
			}
		}
	}
}

// storageMayImport is every package of ours the storage may depend on: the
// domain, and the neutral packages that declare what a front end keeps in the
// database (its records and the store interface it needs), so that the store
// implements them without depending on the front end. A package missing here
// is a front end, or drags one in.
var storageMayImport = []string{"internal/account", "internal/mailstore", "internal/msgindex",
	"internal/msgindex/mailcorpus", "internal/passhash", "internal/queue", "internal/dkim",
	"internal/authrec", "internal/davrec", "internal/web/websession"}

func TestStorageImportsNoFrontend(t *testing.T) {
	for _, pkg := range []string{"internal/store/sqlstore", "internal/store/storetest"} {
		for _, d := range deps(t, pkg) {
			if !strings.HasPrefix(d, mod) || strings.HasPrefix(d, mod+"internal/store/") {
				continue
			}
			if !slices.Contains(storageMayImport, strings.TrimPrefix(d, mod)) {
				t.Errorf("%s depends on %s: storage imports the domain and the neutral record packages only "+
					"(move the records it needs into one, as authrec, davrec and websession)", pkg, d)
			}
		}
	}
}
