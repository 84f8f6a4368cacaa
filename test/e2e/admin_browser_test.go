package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/web"
)

// TestAdminConsoleBrowser runs test/browser/admin_walk.mjs (playwright-core
// driving /usr/bin/chromium) against the real binary: an organisation
// administrator adds a domain, sets its security policy, reads its DNS
// records and deletes it, then finds, adds, imports (dry run), resets and
// deletes a member, in English and Japanese at desktop and phone
// width. axe-core checks every page and must report no violation;
// screenshots go to test/e2e/screenshots.
func TestAdminConsoleBrowser(t *testing.T) {
	root, dir := browserDir(t)
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	root1 := addMember(t, in, "root@example.com")
	in.MustRun(t, "admin", "grant", root1.Email, "--org")
	srv := in.StartServer(t)

	type run struct {
		Tag      string            `json:"tag"`
		Email    string            `json:"email"`
		Password string            `json:"password"`
		Lang     string            `json:"lang"`
		Width    int               `json:"width"`
		Height   int               `json:"height"`
		Text     map[string]string `json:"text"`
	}
	runs := []run{
		{Tag: "en-desktop", Lang: "en", Width: 1280, Height: 800},
		{Tag: "en-phone", Lang: "en", Width: 390, Height: 844},
		{Tag: "ja-desktop", Lang: "ja", Width: 1280, Height: 800},
		{Tag: "ja-phone", Lang: "ja", Width: 390, Height: 844},
	}
	for i := range runs {
		runs[i].Email, runs[i].Password, runs[i].Text = root1.Email, root1.Main, adminWalkText(runs[i].Lang)
	}
	cfg, _ := json.Marshal(map[string]any{"baseURL": srv.URL(""), "outDir": filepath.Join(root, "test", "e2e", "screenshots"), "runs": runs})
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "admin_walk.mjs", string(cfg))
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pages, done := 0, false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Event, Tag, Page, URL string
			Violations            []struct {
				ID, Impact, Help string
				Nodes            []string
			}
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Logf("admin_walk.mjs: %s", sc.Text())
			continue
		}
		switch ev.Event {
		case "axe":
			pages++
			for _, v := range ev.Violations {
				t.Errorf("%s %s (%s): axe %s (%s): %s at %v", ev.Tag, ev.Page, ev.URL, v.ID, v.Impact, v.Help, v.Nodes)
			}
		case "done":
			done = true
		}
	}
	if err := cmd.Wait(); err != nil || !done {
		t.Fatalf("admin_walk.mjs: %v\n%s\nserver stderr:\n%s", err, stderr.String(), srv.Stderr())
	}
	t.Logf("axe-core checked %d pages", pages)
	if pages < 4*18 {
		t.Fatalf("axe-core checked %d pages, want at least 72", pages)
	}
}

// adminWalkText is the console's strings in language l that admin_walk.mjs
// finds elements by, from the web package's catalog.
func adminWalkText(l string) map[string]string {
	m := map[string]string{}
	for k, key := range map[string]string{"email": "signin.email", "password": "signin.password", "signin": "signin.submit",
		"console": "admin.title", "domains": "admin.nav.domains", "add": "admin.domains.add", "name": "admin.domains.name",
		"created": "admin.domains.add.created", "optional": "admin.policy.optional", "policyEdit": "admin.policy.edit",
		"networks": "admin.policy.networks", "expire": "admin.policy.expire", "force": "admin.policy.force",
		"save": "admin.policy.save", "forced": "admin.policy.forced", "dns": "admin.dns.show",
		"deleteAll": "admin.domains.deleteall.submit", "deleteAllType": "admin.domains.deleteall.type", "members": "admin.nav.members",
		"auditNav": "admin.nav.audit", "auditDeleted": "audit.action.domain.deleted"} {
		m[k] = web.Text(l, key)
	}
	// The member count's line, as the page writes it for the one member.
	m["deleteAllMembers"] = strings.SplitN(fmt.Sprintf(web.Text(l, "admin.domains.deleteall.members"), 1), "（", 2)[0]
	m["deleteAllMembers"] = strings.SplitN(m["deleteAllMembers"], ",", 2)[0]
	return m
}
