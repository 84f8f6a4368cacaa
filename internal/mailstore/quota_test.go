package mailstore

import "testing"

// TestQuota: the member's limit, else the domain's, else the server's; 0
// at any level is none; a message fits when usage plus its size stays
// within the limit.
func TestQuota(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	for _, c := range []struct {
		q          Quota
		def, limit int64
		fits100    bool
	}{
		{Quota{Used: 50}, 0, 0, true},
		{Quota{Used: 50}, 100, 100, false},
		{Quota{Used: 50}, 150, 150, true},
		{Quota{Used: 50, Domain: n(120)}, 1000, 120, false},
		{Quota{Used: 50, Domain: n(0)}, 100, 0, true},
		{Quota{Used: 50, Member: n(200), Domain: n(10)}, 10, 200, true},
		{Quota{Used: 50, Member: n(0), Domain: n(10)}, 10, 0, true},
		{Quota{Used: 50}, -1, 0, true},
	} {
		if got := c.q.Limit(c.def); got != c.limit {
			t.Errorf("%+v Limit(%d) = %d, want %d", c.q, c.def, got, c.limit)
		}
		if got := c.q.Fits(100, c.def); got != c.fits100 {
			t.Errorf("%+v Fits(100, %d) = %v", c.q, c.def, got)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB",
		12_897_484: "12.3 MiB", 1 << 30: "1 GiB", 5 << 40: "5 TiB", 3 << 50: "3072 TiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
