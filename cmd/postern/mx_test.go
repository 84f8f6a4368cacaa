package main

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1073741824": 1 << 30, "1GiB": 1 << 30, "1gib": 1 << 30, "500MiB": 500 << 20, "2 GiB": 2 << 30,
		"1.5GiB": 3 << 29, "10KiB": 10 << 10, "1GB": 1e9, "3MB": 3e6, "100B": 100, " 7 ": 7, "1TiB": 1 << 40,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "GiB", "1XB", "1 GiB GiB", "NaN", "Inf", "1e30", "one"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestMailFlags(t *testing.T) {
	for _, tc := range []struct{ flag, value, want string }{
		{"--mailbox-quota", "lots", "--mailbox-quota must be a size"},
		{"--smtp-rate-limit", "-5", "--smtp-rate-limit must be a number of recipients"},
	} {
		code, _, stderr := runIn(t, nil, "serve", "--data", t.TempDir(), "--web-addr", "127.0.0.1:0", tc.flag, tc.value)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s %s: exit %d, %s", tc.flag, tc.value, code, stderr)
		}
	}
	code, _, stderr := runIn(t, map[string]string{"POSTERN_MAILBOX_QUOTA": "1 GiB and more"}, "serve", "--data", t.TempDir())
	if code != 2 || !strings.Contains(stderr, "--mailbox-quota must be") {
		t.Errorf("from the environment: exit %d, %s", code, stderr)
	}
}
