package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestStorage: the Security page shows the member's mail storage against
// the limit that applies, as text and as a <meter> that screen readers
// announce in words (English and Japanese); no meter without a limit, a
// notice when full; GET /api/v1/me has the same figures.
func TestStorage(t *testing.T) {
	e := newEnv(t, false)
	m := e.member("alice@new.example", "")
	ctx := context.Background()
	if err := e.db.Mail().Deliver(ctx, m.ID, []byte(strings.Repeat("x", 1536))); err != nil {
		t.Fatal(err)
	}
	set := func(limit int64) {
		t.Helper()
		if err := e.db.SetMailQuota(ctx, m.ID, &limit); err != nil {
			t.Fatal(err)
		}
	}
	set(10 << 10)
	c := e.client()
	wantStatus(t, c.signinAPI(m.Email, testPassword), 200)

	r := c.get("/security")
	wantStatus(t, r, 200)
	has(t, r, `<h2 id="storage-h">Mail storage</h2>`, `<p id="storage-used">1.5 KiB of 10 KiB used</p>`,
		`<meter class="storage" min="0" max="10240" value="1536" high="9216" optimum="0"`,
		`aria-labelledby="storage-h" aria-describedby="storage-used" aria-valuetext="1.5 KiB of 10 KiB used">15%</meter>`)
	if strings.Contains(string(r.body), "new mail is refused") {
		t.Error("a member with room is told the storage is full")
	}
	req, _ := http.NewRequest("GET", e.ts.URL+"/security", nil)
	req.Header.Set("Accept-Language", "ja")
	has(t, c.do(req), `<h2 id="storage-h">メールの保存容量</h2>`, `<p id="storage-used">10 KiB 中 1.5 KiB を使用</p>`)

	var me struct {
		Storage *struct {
			Used  int64  `json:"used"`
			Limit *int64 `json:"limit"`
		} `json:"storage"`
	}
	c.api("GET", "/api/v1/me", nil).json(&me)
	if me.Storage == nil || me.Storage.Used != 1536 || me.Storage.Limit == nil || *me.Storage.Limit != 10<<10 {
		t.Fatalf("GET /api/v1/me storage: %+v", me.Storage)
	}

	set(1024) // full: new mail is refused
	has(t, c.get("/security"), `1.5 KiB of 1 KiB used`, `>100%</meter>`, "Your mail storage is full: new mail is refused until you make room.")

	set(0) // no limit: no meter
	r = c.get("/security")
	has(t, r, `<p id="storage-used">1.5 KiB used; your mail storage has no limit.</p>`)
	if strings.Contains(string(r.body), "<meter") {
		t.Error("a meter without a limit")
	}
	rr := c.api("GET", "/api/v1/me", nil)
	if !strings.Contains(string(rr.body), `"storage":{"used":1536,"limit":null}`) {
		t.Fatalf("GET /api/v1/me without a limit: %s", rr.body)
	}
}
