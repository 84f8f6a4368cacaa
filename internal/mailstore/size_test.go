package mailstore

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1073741824": 1 << 30, "1GiB": 1 << 30, "1gib": 1 << 30, "500MiB": 500 << 20, "2 GiB": 2 << 30,
		"1.5GiB": 3 << 29, "10KiB": 10 << 10, "1GB": 1e9, "3MB": 3e6, "100B": 100, " 7 ": 7, "1TiB": 1 << 40,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "GiB", "1XB", "1 GiB GiB", "NaN", "Inf", "1e30", "one"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}
