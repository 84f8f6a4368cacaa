package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAdminAndPolicyCommands: the CLI's administrator roles and domain
// policy, as the console sees them, with their usage errors.
func TestAdminAndPolicyCommands(t *testing.T) {
	env := map[string]string{"POSTERN_DATA": t.TempDir()}
	must := mustRunIn(t, env)
	must("domain", "add", "old.example", "--created", "2020-01-01")
	must("domain", "add", "new.example")
	must("user", "add", "root@new.example")

	if code, _, stderr := runIn(t, env, "admin", "grant", "root@new.example"); code != 2 || !strings.Contains(stderr, "--org or --domain") {
		t.Errorf("grant without a scope: %d %s", code, stderr)
	}
	must("admin", "grant", "root@new.example", "--domain", "old.example,new.example")
	var roles []adminRoleJSON
	if err := json.Unmarshal([]byte(must("admin", "list", "--json")), &roles); err != nil || len(roles) != 2 || roles[0].Domain != "new.example" || roles[1].Role != "domain" {
		t.Fatalf("admin list: %+v %v", roles, err)
	}
	must("admin", "revoke", "root@new.example", "--domain", "new.example")
	if code, _, stderr := runIn(t, env, "admin", "revoke", "root@new.example", "--domain", "new.example"); code != 1 || !strings.Contains(stderr, "not an administrator of new.example") {
		t.Errorf("revoke twice: %d %s", code, stderr)
	}

	var p policyJSON
	out := must("domain", "policy", "old.example", "--protocols", "smtp,IMAP", "--allow-cidr", "10.0.0.0/8", "--allow-cidr", "192.0.2.1",
		"--expire-unused-days", "60", "--force-setting", "on", "--quota", "1GiB", "--json")
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Protocols, ",") != "imap,smtp" || strings.Join(p.AllowCIDRs, ",") != "10.0.0.0/8,192.0.2.1/32" ||
		p.ExpireUnusedDays != 60 || !p.ForceSetting || p.Policy != "enforced" || p.Quota == nil || *p.Quota != 1<<30 {
		t.Fatalf("policy: %+v", p)
	}
	if out := must("domain", "policy", "old.example"); !strings.Contains(out, "imap, smtp") || !strings.Contains(out, "after 60 days unused") {
		t.Errorf("policy shown:\n%s", out)
	}
	for _, bad := range [][]string{{"--protocols", "gopher"}, {"--allow-cidr", "10.0.0.0/99"}, {"--expire-unused-days", "-1"}, {"--force-setting", "maybe"}} {
		if code, _, stderr := runIn(t, env, append([]string{"domain", "policy", "old.example"}, bad...)...); code != 2 {
			t.Errorf("%v: %d %s", bad, code, stderr)
		}
	}
	if code, _, stderr := runIn(t, env, "domain", "policy", "new.example", "--force-setting", "on"); code != 1 || !strings.Contains(stderr, "already uses app passwords") {
		t.Errorf("forcing an enforced domain: %d %s", code, stderr)
	}

	if code, _, stderr := runIn(t, env, "domain", "delete", "new.example"); code != 1 || !strings.Contains(stderr, "still has 1 members") {
		t.Errorf("deleting a domain with members: %d %s", code, stderr)
	}
	must("domain", "delete", "old.example")
	if out := must("domain", "list"); strings.Contains(out, "old.example") {
		t.Errorf("deleted domain listed:\n%s", out)
	}
}
