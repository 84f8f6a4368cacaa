package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/passhash"
	"github.com/postern/postern/internal/store/sqlstore"
)

// keys returns the sorted keys of a JSON object.
func keys(m map[string]any) string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return strings.Join(k, ",")
}

// wantFail checks a failed command: exit code, and a line "postern: …"
// containing want on stderr (after the log lines of serve).
func wantFail(t *testing.T, r Result, code int, want string) {
	t.Helper()
	if r.Code != code {
		t.Errorf("exit %d, want %d\n%s", r.Code, code, r)
		return
	}
	for _, line := range strings.Split(r.Stderr, "\n") {
		if strings.HasPrefix(line, "postern: ") {
			if !strings.Contains(line, want) {
				t.Errorf("stderr %q, want \"postern: …%s…\"", line, want)
			}
			return
		}
	}
	t.Errorf("no \"postern: …\" line on stderr, want %q\n%s", want, r)
}

// wantFailLine is wantFail for an administration command: exit 1 and exactly
// one line on stderr.
func wantFailLine(t *testing.T, r Result, want string) {
	t.Helper()
	wantFail(t, r, 1, want)
	if s := strings.TrimSuffix(r.Stderr, "\n"); strings.Contains(s, "\n") || !strings.HasPrefix(s, "postern: ") {
		t.Errorf("stderr is not one line \"postern: …\":\n%s", r.Stderr)
	}
}

var appPasswordRE = regexp.MustCompile(`^[` + account.Alphabet + `]{20}$`)

func TestCLI(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		t.Parallel()
		testDomains(t, in)
		testUsers(t, in)
		testAppPasswords(t, in)
		testUsageErrors(t, in)
	})
}

func testDomains(t *testing.T, in *Instance) {
	in.MustRun(t, "domain", "add", "example.com")
	in.MustRun(t, "domain", "add", "legacy.example", "--created", "2020-04-01")
	// The cut-off day itself is on the enforced side; the day before is not.
	in.MustRun(t, "domain", "add", "--created=2022-10-13", "cutoff.example")
	in.MustRun(t, "domain", "add", "before.example", "--created", "2022-10-12")
	wantFailLine(t, in.Run(t, "domain", "add", "Example.COM"), "The domain example.com already exists.")
	wantFailLine(t, in.Run(t, "domain", "add", "not a domain"), "is not a valid domain name")
	wantFail(t, in.Run(t, "domain", "add", "x.example", "--created", "yesterday"), 2, "--created")

	var list []map[string]any
	in.RunJSON(t, &list, "domain", "list")
	want := map[string]string{"example.com": "enforced", "legacy.example": "optional", "cutoff.example": "enforced", "before.example": "optional"}
	if len(list) != len(want) {
		t.Fatalf("domain list: %v", list)
	}
	for _, d := range list {
		if keys(d) != "created_at,name,policy,quota" || d["quota"] != nil {
			t.Errorf("domain keys %s", keys(d))
		}
		if d["policy"] != want[d["name"].(string)] {
			t.Errorf("domain %v: policy %v, want %s", d["name"], d["policy"], want[d["name"].(string)])
		}
	}
	if out := in.MustRun(t, "domain", "list"); !strings.Contains(out, "legacy.example") || !strings.Contains(out, "optional") {
		t.Errorf("domain list:\n%s", out)
	}
}

func testUsers(t *testing.T, in *Instance) {
	// A generated password is printed once.
	out := in.MustRun(t, "user", "add", "Alice@Example.com", "--name", "Alice Example")
	m := regexp.MustCompile(`Main password: (\S+)`).FindStringSubmatch(out)
	if m == nil || len(m[1]) < 20 {
		t.Fatalf("user add printed no strong password:\n%s", out)
	}
	alicePw := m[1]
	var added map[string]any
	in.RunJSON(t, &added, "user", "add", "dave@example.com")
	if pw, _ := added["password"].(string); len(pw) < 20 || added["email"] != "dave@example.com" {
		t.Errorf("user add --json: %v", added)
	}
	if r := in.RunStdin(t, "bob's long password\n", "user", "add", "bob@legacy.example", "--password-stdin"); r.Code != 0 || strings.Contains(r.Stdout, "bob's long password") {
		t.Fatalf("user add --password-stdin: %s", r)
	}
	in.RunStdin(t, "carol's long password\n", "user", "add", "carol@legacy.example", "--password-stdin", "--name", "Carol")

	wantFailLine(t, in.Run(t, "user", "add", "eve@nowhere.example"), "The domain nowhere.example does not exist")
	wantFailLine(t, in.Run(t, "user", "add", "not-an-address"), "is not a valid address")
	wantFailLine(t, in.Run(t, "user", "add", "alice@example.com"), "A member alice@example.com already exists.")
	wantFailLine(t, in.RunStdin(t, "short\n", "user", "add", "frank@example.com", "--password-stdin"), "too short")
	wantFailLine(t, in.RunStdin(t, "password123\n", "user", "add", "frank@example.com", "--password-stdin"), "too common")
	wantFailLine(t, in.RunStdin(t, "", "user", "add", "frank@example.com", "--password-stdin"), "no password")

	// user list: the exact JSON shape, flags after the words or before them.
	var users []map[string]any
	in.RunJSON(t, &users, "user", "list", "example.com")
	var users2 []map[string]any
	if err := json.Unmarshal([]byte(in.MustRun(t, "--json", "user", "list", "example.com")), &users2); err != nil || len(users2) != len(users) {
		t.Errorf("--json before the words: %v %v", err, users2)
	}
	if len(users) != 2 {
		t.Fatalf("user list example.com: %v", users)
	}
	for _, u := range users {
		if keys(u) != "domain,email,name,policy,quota,state,storage_limit,storage_used,use_app_passwords" {
			t.Errorf("user keys %s", keys(u))
		}
	}
	alice := users[0]
	if alice["email"] != "alice@example.com" || alice["name"] != "Alice Example" || alice["domain"] != "example.com" ||
		alice["policy"] != "enforced" || alice["use_app_passwords"] != true || alice["state"] != "active" {
		t.Errorf("alice: %v", alice)
	}
	wantFailLine(t, in.Run(t, "user", "list", "nowhere.example"), "No domain nowhere.example")

	// The setting: refused for enforced domains, effective for optional ones.
	wantFailLine(t, in.Run(t, "user", "set", "alice@example.com", "--use-app-passwords", "off"), "enforced domain")
	in.MustRun(t, "user", "set", "carol@legacy.example", "--use-app-passwords", "on")
	policyOf := func(email string) map[string]any {
		var list []map[string]any
		in.RunJSON(t, &list, "user", "list")
		for _, u := range list {
			if u["email"] == email {
				return u
			}
		}
		t.Fatalf("%s not listed", email)
		return nil
	}
	if u := policyOf("carol@legacy.example"); u["use_app_passwords"] != true || u["policy"] != "optional" {
		t.Errorf("carol after set on: %v", u)
	}
	if u := policyOf("bob@legacy.example"); u["use_app_passwords"] != false {
		t.Errorf("bob: %v", u)
	}

	// Suspend and resume.
	in.MustRun(t, "user", "suspend", "bob@legacy.example")
	if u := policyOf("bob@legacy.example"); u["state"] != "suspended" {
		t.Errorf("bob after suspend: %v", u)
	}
	in.MustRun(t, "user", "resume", "bob@legacy.example")
	if u := policyOf("bob@legacy.example"); u["state"] != "active" {
		t.Errorf("bob after resume: %v", u)
	}
	wantFailLine(t, in.Run(t, "user", "suspend", "nobody@example.com"), "No member nobody@example.com")

	// An administrator reset of the main password.
	in.RunStdin(t, "a new long password\n", "user", "passwd", "alice@example.com", "--password-stdin")
	wantFailLine(t, in.RunStdin(t, "aaaaaaaaaaaa\n", "user", "passwd", "alice@example.com", "--password-stdin"), "too weak")
	withStore(t, in, func(ctx context.Context, db *sqlstore.DB) {
		m, err := db.MemberByEmail(ctx, "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		h := passhash.New(passhash.Default)
		if h.Verify(ctx, m.PasswordHash, "a new long password") != nil || h.Verify(ctx, m.PasswordHash, alicePw) == nil {
			t.Error("user passwd did not replace the main password")
		}
	})
}

func testAppPasswords(t *testing.T, in *Instance) {
	r := in.Run(t, "apppass", "create", "alice@example.com", "--name", "Thunderbird")
	if r.Code != 0 || !appPasswordRE.MatchString(strings.TrimSpace(r.Stdout)) {
		t.Fatalf("apppass create: want 20 characters of the alphabet on stdout\n%s", r)
	}
	var created map[string]any
	in.RunJSON(t, &created, "apppass", "create", "alice@example.com", "--name", "iPhone Mail")
	if keys(created) != "created_at,id,name,password" || !appPasswordRE.MatchString(created["password"].(string)) || created["name"] != "iPhone Mail" {
		t.Errorf("apppass create --json: %v", created)
	}
	wantFailLine(t, in.Run(t, "apppass", "create", "alice@example.com", "--name", "thunderbird"), "already")
	wantFailLine(t, in.Run(t, "apppass", "create", "bob@legacy.example", "--name", "Mail"), "--use-app-passwords on")
	wantFailLine(t, in.Run(t, "apppass", "create", "alice@example.com", "--name", "  "), "name")

	var list []map[string]any
	in.RunJSON(t, &list, "apppass", "list", "alice@example.com")
	if len(list) != 2 {
		t.Fatalf("apppass list: %v", list)
	}
	for _, p := range list {
		if keys(p) != "active,created_at,id,last_used_at,last_used_ip,last_used_protocol,name" {
			t.Errorf("apppass keys %s", keys(p))
		}
		if p["last_used_at"] != nil || p["active"] != true {
			t.Errorf("new app password: %v", p)
		}
	}
	if list[0]["name"] != "Thunderbird" || list[1]["id"] != created["id"] {
		t.Errorf("apppass list order or ids: %v", list)
	}

	// At most 5; the 6th gets the limit message.
	for _, name := range []string{"Outlook", "DAVx5", "curl"} {
		in.MustRun(t, "apppass", "create", "alice@example.com", "--name", name)
	}
	wantFailLine(t, in.Run(t, "apppass", "create", "alice@example.com", "--name", "One too many"), "Delete one")

	// Delete, then list.
	id := list[0]["id"].(string)
	in.MustRun(t, "apppass", "delete", "alice@example.com", id)
	in.RunJSON(t, &list, "apppass", "list", "alice@example.com")
	if len(list) != 4 {
		t.Errorf("after delete: %d app passwords", len(list))
	}
	for _, p := range list {
		if p["id"] == id {
			t.Error("deleted app password still listed")
		}
	}
	wantFailLine(t, in.Run(t, "apppass", "delete", "alice@example.com", id), "no third-party app password with id")
	// Another member's id is not found either (no IDOR through the CLI).
	wantFailLine(t, in.Run(t, "apppass", "delete", "carol@legacy.example", list[0]["id"].(string)), "no third-party app password")

	// Turning the setting off makes a member's app passwords inactive, not gone.
	in.MustRun(t, "apppass", "create", "carol@legacy.example", "--name", "Mail")
	in.MustRun(t, "user", "set", "carol@legacy.example", "--use-app-passwords", "off")
	in.RunJSON(t, &list, "apppass", "list", "carol@legacy.example")
	if len(list) != 1 || list[0]["active"] != false {
		t.Errorf("carol's app passwords with the setting off: %v", list)
	}

	// Every create and delete notified the member, through the service.
	withStore(t, in, func(ctx context.Context, db *sqlstore.DB) {
		m, _ := db.MemberByEmail(ctx, "alice@example.com")
		msgs, err := db.Messages(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		for _, msg := range msgs {
			kinds[msg.Kind]++
			if strings.Contains(msg.Body, strings.TrimSpace(r.Stdout)) {
				t.Error("a message contains the app password")
			}
		}
		if kinds[account.MsgAppPasswordCreated] != 5 || kinds[account.MsgAppPasswordDeleted] != 1 {
			t.Errorf("alice's messages by kind: %v", kinds)
		}
	})
}

func testUsageErrors(t *testing.T, in *Instance) {
	for _, args := range [][]string{
		{"frobnicate"},
		{"user"},
		{"user", "add"},
		{"user", "list", "a.example", "b.example"},
		{"user", "set", "bob@legacy.example", "--use-app-passwords", "maybe"},
		{"user", "passwd", "bob@legacy.example"},
		{"apppass", "create", "alice@example.com"},
		{"apppass", "delete", "alice@example.com"},
		{"domain", "list", "--no-such-flag"},
		{"domain", "list", "--cutoff", "13/10/2022"},
	} {
		r := in.Run(t, args...)
		if r.Code != 2 || !strings.HasPrefix(r.Stderr, "postern: ") || !strings.Contains(r.Stderr, "usage") && !strings.Contains(r.Stderr, "Usage") {
			t.Errorf("postern %s: want exit 2 with a usage text\n%s", strings.Join(args, " "), r)
		}
	}
	if r := Run(t, nil, "", "--help"); r.Code != 0 || !strings.Contains(r.Stdout, "apppass create") {
		t.Errorf("--help: %s", r)
	}
}

// withStore opens the installation's store, as the binary does.
func withStore(t *testing.T, in *Instance, fn func(ctx context.Context, db *sqlstore.DB)) {
	t.Helper()
	dsn := in.Database
	if dsn == "" {
		dsn = filepath.Join(in.Data, "postern.db")
	}
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fn(ctx, db)
}

// TestCLIEnvironment checks that every configuration flag also comes from
// POSTERN_<NAME>, that a flag wins over its variable, and where files go.
func TestCLIEnvironment(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	env := []string{"POSTERN_DATA=" + data}
	if r := Run(t, env, "", "domain", "add", "env.example"); r.Code != 0 {
		t.Fatalf("with POSTERN_DATA: %s", r)
	}
	for _, name := range []string{"postern.db", "secret.key"} {
		if _, err := os.Stat(filepath.Join(data, name)); err != nil {
			t.Errorf("POSTERN_DATA not used: %v", err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(data, "secret.key")); fi == nil || fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Errorf("secret.key: %v", fi)
	}
	// The flag wins over the variable.
	other := t.TempDir()
	if r := Run(t, env, "", "domain", "add", "flag.example", "--data", other); r.Code != 0 {
		t.Fatal(r)
	}
	if out := Run(t, env, "", "domain", "list").Stdout; strings.Contains(out, "flag.example") || !strings.Contains(out, "env.example") {
		t.Errorf("--data did not win over POSTERN_DATA:\n%s", out)
	}
	// Created 0700 when missing.
	fresh := filepath.Join(t.TempDir(), "new")
	Run(t, []string{"POSTERN_DATA=" + fresh}, "", "domain", "list")
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data folder: %v %v", fi, err)
	}
	// The cut-off from the environment changes the policy.
	var list []map[string]any
	r := Run(t, append(env, "POSTERN_CUTOFF=2000-01-01"), "", "domain", "list", "--json")
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil || len(list) != 1 || list[0]["policy"] != "enforced" {
		t.Errorf("POSTERN_CUTOFF: %v %s", err, r)
	}
	r = Run(t, append(env, "POSTERN_CUTOFF=2999-01-01"), "", "domain", "list", "--json")
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil || len(list) != 1 || list[0]["policy"] != "optional" {
		t.Errorf("POSTERN_CUTOFF: %v %s", err, r)
	}
	wantFail(t, Run(t, append(env, "POSTERN_LOG_LEVEL=loud"), "", "domain", "list"), 2, "--log-level")
	// A PostgreSQL URL from the environment.
	dsn := PostgresSchema(t)
	if r := Run(t, append(env, "POSTERN_DATABASE="+dsn), "", "domain", "add", "pg.example"); r.Code != 0 {
		t.Fatal(r)
	}
	in := &Instance{Data: data, Database: dsn}
	if out := in.MustRun(t, "domain", "list"); !strings.Contains(out, "pg.example") || strings.Contains(out, "env.example") {
		t.Errorf("POSTERN_DATABASE not used:\n%s", out)
	}
	// An explicit secret file must exist: a node must not invent its own key.
	wantFail(t, Run(t, append(env, "POSTERN_SECRET_FILE="+filepath.Join(data, "missing.key")), "", "domain", "list"), 1, "does not exist")
}
