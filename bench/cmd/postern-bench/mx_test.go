package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMXQuickNull runs the MX benchmark against the null MX for a moment,
// so that a broken harness shows in CI: the figures are recorded and the
// MX section of the report is written between its markers, the rest of the
// file kept. No timing is asserted. (The Postfix → Dovecot pipeline needs
// root and dovecot-lmtpd; bench/mx.sh runs it.)
func TestMXQuickNull(t *testing.T) {
	work := t.TempDir()
	doc := filepath.Join(work, "benchmarks.md")
	if err := os.WriteFile(doc, []byte("# Benchmarks\n\nHand-written part.\n\n"+mxBegin+"\nold\n"+mxEnd+"\n\nAfter.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &mxConfig{loadConfig: loadConfig{quick: true, work: work, doc: doc, targets: map[string]bool{"null": true},
		members: 20, rounds: 2, dur: 200 * time.Millisecond, clients: 4, size: 10 << 10, perConn: 1, perMsg: []int{1, 3}}}
	if err := runMX(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"messages/s (250)", "messages/s delivered", "p99 ms", "server CPU µs/msg (load)"} {
		s := c.resultsForTest.get("mx", "smtp c=4", m, "null")
		if s == nil || len(s.Values) != 2 || s.Values[0] <= 0 {
			t.Errorf("%s: %+v", m, s)
		}
	}
	b, _ := os.ReadFile(doc)
	for _, want := range []string{"Hand-written part.", "After.", "| smtp c=4 | messages/s (250) |", "the pipeline was not measured"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "\nold\n") || strings.Count(string(b), mxBegin) != 1 {
		t.Errorf("the old section was not replaced:\n%s", b)
	}
}
