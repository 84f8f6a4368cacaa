package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/dnsrecords"
	"github.com/postern/postern/internal/store/sqlstore"
)

// cli runs commands on one data folder.
type cli struct {
	t    *testing.T
	data string
	env  map[string]string
}

func newCLI(t *testing.T) *cli {
	return &cli{t: t, data: t.TempDir(), env: map[string]string{}}
}

func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	env := map[string]string{"POSTERN_DATA": c.data}
	for k, v := range c.env {
		env[k] = v
	}
	return runIn(c.t, env, args...)
}

func (c *cli) must(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 0 {
		c.t.Fatalf("%s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (c *cli) json(v any, args ...string) {
	c.t.Helper()
	out := c.must(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (c *cli) keys(domain string) []dkimKeyJSON {
	c.t.Helper()
	var keys []dkimKeyJSON
	c.json(&keys, "domain", "dkim", "list", domain)
	return keys
}

func states(keys []dkimKeyJSON) string {
	var s []string
	for _, k := range keys {
		s = append(s, k.Algorithm+":"+k.State)
	}
	return strings.Join(s, " ")
}

// TestDomainAddMakesKeys: a domain is added with an Ed25519 and an RSA
// key, listed with their records; another run of the CLI on the same data
// folder (another node with the same secret key file) opens them, one with
// another secret key file does not.
func TestDomainAddMakesKeys(t *testing.T) {
	c := newCLI(t)
	out := c.must("domain", "add", "example.com")
	if !strings.Contains(out, "DKIM keys p") || !strings.Contains(out, "postern domain dns example.com") {
		t.Errorf("domain add says:\n%s", out)
	}
	keys := c.keys("example.com")
	if states(keys) != "ed25519:active rsa:active" {
		t.Fatalf("keys %+v", keys)
	}
	for _, k := range keys {
		if k.Name != k.Selector+"._domainkey.example.com" || !k.Active || k.RetiredAt != nil ||
			!strings.HasPrefix(k.TXT, "v=DKIM1; k="+k.Algorithm+"; p=") || !strings.HasPrefix(k.Selector, "p2") {
			t.Errorf("key %+v", k)
		}
	}
	text := c.must("domain", "dkim", "list", "example.com")
	for _, k := range keys {
		if !strings.Contains(text, k.Selector+"._domainkey.example.com.\t3600\tIN\tTXT\t\"v=DKIM1; k="+k.Algorithm) {
			t.Errorf("list lacks the record of %s:\n%s", k.Selector, text)
		}
	}

	ctx := context.Background()
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, data: c.data}
	defer a.close()
	ring, err := a.keyring(ctx, cliActor)
	if err != nil {
		t.Fatal(err)
	}
	if active, err := ring.ActiveDKIMKeys(ctx, "example.com"); err != nil || len(active) != 2 {
		t.Errorf("another process: %d keys, %v", len(active), err)
	}

	other := filepath.Join(t.TempDir(), "other.key")
	os.WriteFile(other, bytes.Repeat([]byte("k"), 32), 0o600)
	b := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, data: c.data, secretFile: other}
	defer b.close()
	ring, err = b.keyring(ctx, cliActor)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ring.ActiveDKIMKeys(ctx, "example.com")
	if err == nil || !strings.Contains(err.Error(), "another secret key file") {
		t.Errorf("with another secret key file: %v", err)
	}
}

// TestDKIMRotateRetire: rotate makes a new active pair and keeps the old
// published, saying which to retire a week later; an active key is not
// retired; a retired one leaves the records.
func TestDKIMRotateRetire(t *testing.T) {
	c := newCLI(t)
	c.must("domain", "add", "example.com")
	first := c.keys("example.com")
	out := c.must("domain", "dkim", "rotate", "example.com")
	for _, want := range []string{"Publish their records now", "for a week",
		"postern domain dkim retire example.com " + first[0].Selector, "postern domain dkim retire example.com " + first[1].Selector} {
		if !strings.Contains(out, want) {
			t.Errorf("rotate lacks %q:\n%s", want, out)
		}
	}
	var fresh []dkimKeyJSON
	c.json(&fresh, "domain", "dkim", "rotate", "example.com")
	if states(fresh) != "ed25519:active rsa:active" || fresh[0].Selector == first[0].Selector {
		t.Errorf("rotate --json: %+v", fresh)
	}
	keys := c.keys("example.com")
	if states(keys) != "ed25519:published rsa:published ed25519:published rsa:published ed25519:active rsa:active" {
		t.Fatalf("after two rotations: %s", states(keys))
	}

	code, _, errOut := c.run("domain", "dkim", "retire", "example.com", fresh[0].Selector)
	if code != 1 || !strings.Contains(errOut, "rotate first") {
		t.Errorf("retire an active key: %d %s", code, errOut)
	}
	out = c.must("domain", "dkim", "retire", "example.com", first[0].Selector)
	if !strings.Contains(out, "Remove its record "+first[0].Selector+"._domainkey.example.com") {
		t.Errorf("retire says: %s", out)
	}
	code, _, errOut = c.run("domain", "dkim", "retire", "example.com", first[0].Selector)
	if code != 1 || !strings.Contains(errOut, "already retired") {
		t.Errorf("retire twice: %d %s", code, errOut)
	}
	keys = c.keys("example.com")
	if keys[0].State != "retired" || keys[0].RetiredAt == nil || keys[0].Active {
		t.Errorf("retired key %+v", keys[0])
	}
	if text := c.must("domain", "dkim", "list", "example.com"); strings.Contains(text, first[0].Selector+"._domainkey") {
		t.Errorf("a retired key's record is still listed:\n%s", text)
	}

	for _, args := range [][]string{
		{"domain", "dkim", "list", "missing.example"},
		{"domain", "dkim", "rotate", "missing.example"},
		{"domain", "dkim", "retire", "missing.example", "p1"},
	} {
		if code, _, errOut := c.run(args...); code != 1 || !strings.Contains(errOut, "No domain missing.example") {
			t.Errorf("%v: %d %s", args, code, errOut)
		}
	}
	if code, _, _ := c.run("domain", "dkim", "retire", "example.com"); code != 2 {
		t.Errorf("retire without a selector: %d", code)
	}
}

// TestDomainDNSSendingRecords: domain dns prints the records of every
// published key, DMARC quarantine, the MTA-STS id of the policy serve
// serves (changing with its mode and host) and TLS reports to postmaster@
// once it reaches somebody.
func TestDomainDNSSendingRecords(t *testing.T) {
	c := newCLI(t)
	c.env["POSTERN_BASE_URL"] = "https://mail.example.com"
	c.must("domain", "add", "example.com")
	first := c.keys("example.com")
	c.must("domain", "dkim", "rotate", "example.com")
	c.must("domain", "dkim", "rotate", "example.com")
	c.must("domain", "dkim", "retire", "example.com", first[1].Selector)
	keys := c.keys("example.com")

	dnsJSON := func(args ...string) map[string]string {
		t.Helper()
		var recs []dnsrecords.Record
		c.json(&recs, append([]string{"domain", "dns", "example.com"}, args...)...)
		m := map[string]string{}
		for _, r := range recs {
			m[r.Name+" "+r.Type] += r.Value
		}
		return m
	}
	got := dnsJSON()
	for _, k := range keys {
		v, ok := got[k.Name+" TXT"]
		if k.State == "retired" && ok {
			t.Errorf("retired %s printed", k.Selector)
		}
		if k.State != "retired" && v != k.TXT {
			t.Errorf("%s: %q, want %q", k.Name, v, k.TXT)
		}
	}
	policy := dnsrecords.MTASTSPolicy("testing", "mail.example.com")
	want := map[string]string{
		"_dmarc.example.com TXT":    "v=DMARC1; p=quarantine",
		"_mta-sts.example.com TXT":  "v=STSv1; id=" + dnsrecords.MTASTSPolicyID(policy),
		"mta-sts.example.com CNAME": "mail.example.com",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["_smtp._tls.example.com TXT"]; ok {
		t.Error("TLS reports asked for without postmaster@")
	}
	if id := dnsJSON("--mta-sts-mode", "enforce")["_mta-sts.example.com TXT"]; id == got["_mta-sts.example.com TXT"] {
		t.Error("the id did not change with the mode")
	}
	c.env["POSTERN_MTA_STS_MODE"] = "enforce"
	c.env["POSTERN_MAIL_HOST"] = "mx.example.net"
	got = dnsJSON()
	if got["_mta-sts.example.com TXT"] != "v=STSv1; id="+dnsrecords.MTASTSPolicyID(dnsrecords.MTASTSPolicy("enforce", "mx.example.net")) || got["example.com MX"] != "10 mx.example.net" {
		t.Errorf("from the environment: %v", got)
	}
	delete(c.env, "POSTERN_MTA_STS_MODE")
	delete(c.env, "POSTERN_MAIL_HOST")

	c.must("user", "add", "alice@example.com")
	c.must("alias", "add", "postmaster@example.com", "alice@example.com")
	if got := dnsJSON(); got["_smtp._tls.example.com TXT"] != "v=TLSRPTv1; rua=mailto:postmaster@example.com" {
		t.Errorf("TLS-RPT: %q", got["_smtp._tls.example.com TXT"])
	}
	if code, _, errOut := c.run("domain", "dns", "example.com", "--mta-sts-mode", "strict"); code != 2 || !strings.Contains(errOut, "enforce, testing or none") {
		t.Errorf("a bad mode: %d %s", code, errOut)
	}
}

// TestServeMakesMissingKeys: a domain created before signing existed has
// no keys; domain dns says so and proposes no quarantine; serve's start
// gives it keys (logged) and its signer signs with them.
func TestServeMakesMissingKeys(t *testing.T) {
	c := newCLI(t)
	c.env["POSTERN_BASE_URL"] = "https://mail.example.com"
	c.must("domain", "add", "new.example")
	// An older Postern's domain: created without keys.
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(c.data, "postern.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDomain(ctx, &account.Domain{Name: "old.example"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	text := c.must("domain", "dns", "old.example")
	if !strings.Contains(text, "old.example has no DKIM keys yet") || !strings.Contains(text, `"v=DMARC1; p=none"`) {
		t.Errorf("domain dns of a domain without keys:\n%s", text)
	}
	if k := c.keys("old.example"); len(k) != 0 {
		t.Fatalf("keys %+v", k)
	}

	var logs bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, data: c.data, baseURL: "https://mail.example.com",
		log: slog.New(slog.NewTextHandler(&logs, nil))}
	defer a.close()
	f := &serveFlags{sending: sendingFlags{mtaSTSMode: "Enforce"}}
	s := &server{app: a, flags: f, log: a.log}
	if err := s.setupSending(ctx); err != nil {
		t.Fatal(err)
	}
	msg := []byte("From: a@old.example\r\nSubject: hi\r\n\r\nhi\r\n")
	if hdr, err := s.signer.Sign(ctx, "old.example", msg); hdr != nil || err != nil {
		t.Fatalf("signed before the keys were made: %q %v", hdr, err)
	}
	for _, tk := range s.tasks {
		if tk.name == "dkim-keys" {
			if err := tk.run(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !strings.Contains(logs.String(), "domain=old.example") || strings.Contains(logs.String(), "domain=new.example") {
		t.Errorf("log:\n%s", logs.String())
	}
	if k := c.keys("old.example"); states(k) != "ed25519:active rsa:active" {
		t.Errorf("keys made at start: %+v", k)
	}
	s.signer = nil
	s.setupSending(ctx) // a fresh signer: the first one remembers that there were no keys, for half a minute
	hdr, err := s.signer.Sign(ctx, "old.example", msg)
	if err != nil || bytes.Count(hdr, []byte("DKIM-Signature:")) != 2 {
		t.Errorf("signature after the start: %q %v", hdr, err)
	}
	if p := s.mtaSTSPolicy("ignored.example"); p != dnsrecords.MTASTSPolicy("enforce", "mail.example.com") {
		t.Errorf("policy %q", p)
	}
	f.sending.mailHost = "mx.example.net"
	if p := s.mtaSTSPolicy("ignored.example"); !strings.Contains(p, "mx: mx.example.net\r\n") {
		t.Errorf("policy with --mail-host %q", p)
	}
	f.sending.mtaSTSMode = "off"
	if err := s.setupSending(ctx); err == nil {
		t.Error("--mta-sts-mode off accepted")
	}
}
