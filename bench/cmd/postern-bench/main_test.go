package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as the null server when the harness
// starts it as a child (os.Executable is the test binary here), with the
// arguments after "null".
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "null" {
		if err := nullCmd(os.Args[2:]); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestQuickNull runs the quick mode against the null server for a second or
// two, so that a broken harness shows in CI. It asserts no timing: only that
// the figures were measured and the report was written.
func TestQuickNull(t *testing.T) {
	work := t.TempDir()
	doc := filepath.Join(work, "benchmarks.md")
	if err := os.WriteFile(doc, []byte("# Benchmarks\n\nHand-written part.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &runConfig{quick: true, null: true, work: work, doc: doc, out: filepath.Join(work, "results.json"),
		figures: map[string]bool{"login": true, "idle": true},
		rounds:  1, dur: 200 * time.Millisecond, conc: []int{1, 4}, members: 50, idleN: []int{50},
		revSess: 5, floodN: 5, scaleSmall: 10, scaleLarge: 20}
	if err := run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	for _, cas := range []string{"imap c=1", "imap c=4", "pop3 c=1", "pop3 c=4"} {
		s := c.resultsForTest.get("login", cas, "cycles/s", "null")
		if s == nil || len(s.Values) != 1 || s.Values[0] <= 0 {
			t.Errorf("login %s: %+v", cas, s)
		}
	}
	if s := c.resultsForTest.get("idle", "50 conns", "RSS MiB", "null"); s == nil || s.Values[0] <= 0 {
		t.Errorf("idle: %+v", s)
	}
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Hand-written part.", docBegin, docEnd, "| imap c=4 | cycles/s |"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q:\n%s", want, b)
		}
	}
	// Regenerating replaces the section instead of appending a second one.
	if err := writeDoc(doc, &bench{cfg: c, res: c.resultsForTest}, time.Second); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(doc)
	if strings.Count(string(b), docBegin) != 1 || !strings.Contains(string(b), "Hand-written part.") {
		t.Errorf("regenerated report:\n%s", b)
	}
}
