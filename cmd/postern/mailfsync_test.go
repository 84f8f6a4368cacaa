package main

import "testing"

func TestParseMailFsync(t *testing.T) {
	for v, want := range map[string]bool{"optimized": true, "always": false} {
		if lazy, err := parseMailFsync(v); err != nil || lazy != want {
			t.Errorf("--mail-fsync %s: lazy %v, %v; want %v", v, lazy, err, want)
		}
	}
	for _, v := range []string{"", "never", "Always"} {
		if _, err := parseMailFsync(v); err == nil {
			t.Errorf("--mail-fsync %q accepted", v)
		}
	}
}
