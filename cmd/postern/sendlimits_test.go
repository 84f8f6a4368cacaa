package main

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/internal/account"
)

func TestParseCaps(t *testing.T) {
	for _, tc := range []struct {
		in        string
		hour, day int
		ok        bool
	}{
		{"200/h,1000/d", 200, 1000, true},
		{" 1000/d , 200/h ", 200, 1000, true},
		{"5/hour,7/Day", 5, 7, true},
		{"1000/d", 0, 1000, true},
		{"0/h,0/d", 0, 0, true},
		{"0", 0, 0, true},
		{"", 0, 0, true},
		{"200", 0, 0, false},
		{"200/w", 0, 0, false},
		{"-1/h", 0, 0, false},
		{"1/h,2/h", 0, 0, false},
		{"x/h", 0, 0, false},
		{"200/h;1000/d", 0, 0, false},
	} {
		h, d, err := parseCaps(tc.in)
		if (err == nil) != tc.ok || tc.ok && (h != tc.hour || d != tc.day) {
			t.Errorf("%q: %d %d %v, want %d %d ok=%v", tc.in, h, d, err, tc.hour, tc.day, tc.ok)
		}
	}
}

// The flags' defaults are account.DefaultSendLimits, read back exactly;
// each flag sets its own two caps.
func TestSendLimitFlags(t *testing.T) {
	var f sendLimitFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	f.register(&app{}, fs)
	l, err := f.limits()
	if err != nil || l != account.DefaultSendLimits {
		t.Fatalf("defaults %+v, %v", l, err)
	}
	if err := fs.Parse([]string{"--send-limit-member-messages", "1/h,2/d", "--send-limit-member-recipients", "3/h,4/d",
		"--send-limit-app-password-messages", "5/h,6/d", "--send-limit-app-password-recipients", "0"}); err != nil {
		t.Fatal(err)
	}
	want := account.SendLimits{
		Member:      account.SendCaps{MessagesPerHour: 1, MessagesPerDay: 2, RecipientsPerHour: 3, RecipientsPerDay: 4},
		AppPassword: account.SendCaps{MessagesPerHour: 5, MessagesPerDay: 6},
	}
	if l, err := f.limits(); err != nil || l != want {
		t.Fatalf("set %+v, %v", l, err)
	}
}

func TestSendLimitFlagUsage(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	code, _, stderr := runIn(t, nil, "serve", "--data", data, "--send-limit-app-password-recipients", "500 an hour")
	if code != 2 || !strings.Contains(stderr, "--send-limit-app-password-recipients must be counts per hour and per day") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}
