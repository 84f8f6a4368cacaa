package main

import (
	"strings"
	"testing"
)

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
