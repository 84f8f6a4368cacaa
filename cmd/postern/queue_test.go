package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/store/sqlstore"
)

// TestQueueCommands: list, show, hold, release, retry and delete on queued
// mail, in text and JSON, and clear errors for IDs that are not there.
func TestQueueCommands(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"POSTERN_DATA": dir}
	must := mustRunIn(t, env)
	must("domain", "add", "example.com")
	must("user", "add", "alice@example.com")
	if out := must("queue", "list"); !strings.Contains(out, "The queue is empty.") {
		t.Errorf("empty list: %q", out)
	}
	db, err := sqlstore.Open(context.Background(), filepath.Join(dir, "postern.db"))
	if err != nil {
		t.Fatal(err)
	}
	var alice int64
	db.SQL.QueryRow(`SELECT id FROM members WHERE email = 'alice@example.com'`).Scan(&alice)
	for _, rcpts := range [][]string{{"bob@far.example", "carol@far.example"}, {"dave@other.example"}} {
		if err := db.Mail().Submit(context.Background(), mailstore.Submission{MemberID: alice, AppPasswordID: "ap-1",
			Outbound: &mailstore.Outbound{From: "alice@example.com", Rcpts: rcpts, Body: []byte("Subject: x\r\n\r\nx\r\n")}}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	out := must("queue", "list")
	for _, want := range []string{"bob@far.example", "carol@far.example", "dave@other.example", "alice@example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %s:\n%s", want, out)
		}
	}
	var list []queueJSON
	if err := json.Unmarshal([]byte(must("queue", "list", "--json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("list --json: %+v, %v", list, err)
	}
	first := list[0]
	if first.From != "alice@example.com" || first.AppPasswordID != "ap-1" || len(first.Recipients) != 2 || first.Size != 17 {
		t.Errorf("first %+v", first)
	}
	id := func(j queueJSON) string { b, _ := json.Marshal(j.ID); return string(b) }
	if out := must("queue", "hold", id(first)); !strings.Contains(out, "Held 2 recipient(s).") {
		t.Errorf("hold: %q", out)
	}
	var shown queueJSON
	json.Unmarshal([]byte(must("queue", "show", id(first), "--json")), &shown)
	if !shown.Recipients[0].Held || !shown.Recipients[1].Held {
		t.Errorf("after hold %+v", shown)
	}
	if out := must("queue", "show", id(first)); !strings.Contains(out, "app password ap-1") || !strings.Contains(out, "bob@far.example: held") {
		t.Errorf("show:\n%s", out)
	}
	if out := must("queue", "release", "--all"); !strings.Contains(out, "Released 3 recipient(s).") {
		t.Errorf("release: %q", out)
	}
	if out := must("queue", "retry", "--all", "--json"); strings.TrimSpace(out) != `{"recipients":3}` && !strings.Contains(out, `"recipients": 3`) {
		t.Errorf("retry --json: %q", out)
	}
	if out := must("queue", "delete", id(list[1])); !strings.Contains(out, "Deleted 1 recipient(s).") {
		t.Errorf("delete: %q", out)
	}
	json.Unmarshal([]byte(must("queue", "list", "--json")), &list)
	if len(list) != 1 || list[0].ID != first.ID {
		t.Errorf("after delete %+v", list)
	}
	for _, bad := range [][]string{{"queue", "show", "999"}, {"queue", "delete", "999"}, {"queue", "hold", "x1"}, {"queue", "hold"}, {"queue", "hold", "--all", "1"}} {
		code, _, stderr := runIn(t, env, bad...)
		if code != 1 || stderr == "" {
			t.Errorf("%v: %d %q", bad, code, stderr)
		}
	}
}

// TestOutboundFlags: wrong queue and smarthost settings stop serve with a
// usage error naming the flag.
func TestOutboundFlags(t *testing.T) {
	env := map[string]string{"POSTERN_DATA": t.TempDir()}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--queue-retry-first", "soon"}, "--queue-retry-first must be a duration"},
		{[]string{"--queue-retry-first", "2h", "--queue-retry-max", "1h"}, "--queue-retry-max must be at least"},
		{[]string{"--queue-lease", "1s"}, "--queue-lease at least 3s"},
		{[]string{"--queue-workers", "0"}, "--queue-workers must be a positive number"},
		{[]string{"--outbound", "sideways"}, "--outbound must be direct, smarthost or off"},
		{[]string{"--outbound", "smarthost"}, "--outbound smarthost needs --smarthost"},
		{[]string{"--smarthost", "relay.example.net:587", "--smarthost-tls", "none"}, "outbound delivery:"},
	} {
		args := append([]string{"serve", "--web-addr", "127.0.0.1:0", "--metrics-addr", "", "--imap-addr", "", "--imaps-addr", "", "--pop3-addr", "",
			"--pop3s-addr", "", "--submission-addr", "", "--submissions-addr", ""}, tc.args...)
		code, _, stderr := runIn(t, env, args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: %d %q, want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
