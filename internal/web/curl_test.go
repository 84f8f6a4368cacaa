package web

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCurlClient uses the API as docs/api.md shows: curl with a cookie jar
// and Content-Type: application/json, no Origin, no CSRF token.
func TestCurlClient(t *testing.T) {
	e := newEnv(t, false)
	e.member("alice@new.example", "Alice")
	jar := filepath.Join(t.TempDir(), "jar")
	curl := func(args ...string) string {
		t.Helper()
		base := []string{"-sS", "-c", jar, "-b", jar, "-w", "\n%{http_code}"}
		out, err := exec.Command("curl", append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	h := "Content-Type: application/json"
	if got := curl("-H", h, "-d", `{"email":"alice@new.example","password":"`+testPassword+`"}`, e.ts.URL+"/api/v1/session"); !strings.HasSuffix(got, "200") {
		t.Fatalf("sign in: %s", got)
	}
	if got := curl(e.ts.URL + "/api/v1/me"); !strings.Contains(got, `"policy":"enforced"`) || !strings.HasSuffix(got, "200") {
		t.Fatalf("me: %s", got)
	}
	got := curl("-H", h, "-d", `{"name":"backup script"}`, e.ts.URL+"/api/v1/me/app-passwords")
	if !strings.Contains(got, `"password":"`) || !strings.HasSuffix(got, "201") {
		t.Fatalf("create: %s", got)
	}
	if got := curl("-X", "DELETE", e.ts.URL+"/api/v1/session"); !strings.HasSuffix(got, "204") {
		t.Fatalf("sign out: %s", got)
	}
	if got := curl(e.ts.URL + "/api/v1/me"); !strings.HasSuffix(got, "401") {
		t.Fatalf("after sign out: %s", got)
	}
}
