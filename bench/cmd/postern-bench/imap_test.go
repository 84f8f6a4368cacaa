package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestImaptestTotals(t *testing.T) {
	out := ` 230   34   41   30   14   13   18   14   17   40    3 ms/cmd avg

Totals:
Logi List Stat Sele Fetc Fet2 Stor Dele Expu Appe Logo 
100%  50%  50% 100% 100% 100%  50% 100% 100% 100% 100% 
                          30%                  5%      
  35   15   20   35   33   46   10   17   33   34   44 
`
	logins, all, err := imaptestTotals(out)
	if err != nil || logins != 35 || all != 322 {
		t.Fatalf("got %d, %d, %v; want 35, 322, nil", logins, all, err)
	}
	if _, _, err := imaptestTotals("Error: connect() failed\n"); err == nil {
		t.Fatal("an error message was read as totals")
	}
}

// TestIMAPMarkdown: the section compares each Postern with Dovecot against
// the targets.
func TestIMAPMarkdown(t *testing.T) {
	r := newResults()
	c := &imapConfig{rounds: 1, clients: 10, dur: 20 * time.Second, idle: 100, dovecotMail: "maildir"}
	for tg, v := range map[string][4]float64{"postern-sqlite": {900, 30, 2, 25}, "postern-postgres": {500, 90, 3, 0}, "dovecot": {400, 60, 2.5, 0}} {
		r.add("imap-stress", "clients=10 secs=20", "login cycles", tg, v[0])
		r.add("imap-ops", "10000 messages", "SELECT (ms)", tg, v[1])
		r.add("imap-ops", "200 messages", "APPEND without TCP_NODELAY (ms per message)", tg, v[2])
		if v[3] > 0 {
			r.add("imap-idle", "100 conns", "KiB/conn (RSS)", tg, v[3])
		}
	}
	md := imapMarkdown(c, r, []string{"postern-sqlite", "postern-postgres", "dovecot"}, "machine\n", time.Minute)
	for _, want := range []string{
		"| target | postern-sqlite | postern-postgres |",
		"| imaptest stress: ≥ 2× Dovecot's login cycles | 2.25×: yes | 1.25×: **no** |",
		"| SELECT (ms), 10000 messages: faster than Dovecot | 0.50×: yes | 1.50×: **no** |",
		"| APPEND without TCP_NODELAY (ms per message), 200 messages: no slower than Dovecot | 0.80×: yes | 1.20×: **no** |",
		"| ≤ 30 KiB per connection in IDLE (100 connections) | 25.0 KiB: yes | – |",
		"| postern-sqlite / dovecot | postern-postgres / dovecot |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in\n%s", want, md)
		}
	}
}

// TestMergeCases: a run at one mailbox size keeps an earlier run's other
// sizes and figures, the earlier ones first.
func TestMergeCases(t *testing.T) {
	old := newResults()
	old.add("imap-ops", "10000 messages", "SELECT (ms)", "dovecot", 4)
	old.add("imap-ops", "100000 messages", "SELECT (ms)", "dovecot", 99)
	old.add("imap-stress", "clients=10 secs=20", "login cycles", "dovecot", 400)
	path := t.TempDir() + "/old.json"
	if err := old.save(path); err != nil {
		t.Fatal(err)
	}
	r := newResults()
	r.add("imap-ops", "100000 messages", "SELECT (ms)", "dovecot", 40)
	if err := r.mergeCases(path); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range r.Samples {
		got = append(got, fmt.Sprintf("%s/%s=%v", s.Figure, s.Case, s.Values))
	}
	want := []string{"imap-ops/10000 messages=[4]", "imap-stress/clients=10 secs=20=[400]", "imap-ops/100000 messages=[40]"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
}
