package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/passhash"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// TestPrefsAndServerSettings: the member's time zone (the browser's guess
// never overrides a choice, and keeps the language beside it) and the
// server settings, on both engines.
func TestPrefsAndServerSettings(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		svc := account.NewService(db, passhash.New(passhash.Params{Memory: 64, Time: 1, Threads: 1}), account.Config{Key: []byte("k")})
		if _, err := svc.AddDomain(ctx, "example.com", time.Time{}); err != nil {
			t.Fatal(err)
		}
		m, err := svc.AddMember(ctx, "a@example.com", "", "a long password")
		if err != nil {
			t.Fatal(err)
		}
		if loc, set, err := svc.Zone(ctx, m.ID); err != nil || set || loc != time.UTC {
			t.Fatalf("zone of a new member: %v %v %v", loc, set, err)
		}
		if err := svc.SetLanguage(ctx, m.ID, "ja"); err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			zone    string
			chosen  bool
			want    string
			wantErr bool
		}{
			{"Asia/Tokyo", false, "Asia/Tokyo", false},    // the browser's, first
			{"Europe/London", false, "Asia/Tokyo", false}, // another browser's: kept
			{"America/New_York", true, "America/New_York", false},
			{"Not/AZone", true, "America/New_York", true},
			{"Local", true, "America/New_York", true},
			{"Europe/Paris", false, "America/New_York", false},
		} {
			if step.chosen {
				err = svc.SetTimeZone(ctx, m.ID, step.zone)
			} else {
				err = svc.DefaultTimeZone(ctx, m.ID, step.zone)
			}
			if (err != nil) != step.wantErr {
				t.Fatalf("%s: %v", step.zone, err)
			}
			if loc, set, err := svc.Zone(ctx, m.ID); err != nil || !set || loc.String() != step.want {
				t.Fatalf("after %s: %v %v %v, want %s", step.zone, loc, set, err, step.want)
			}
		}
		if s, err := db.Queue().QueueSender(ctx, m.ID); err != nil || s.Language != "ja" {
			t.Fatalf("language beside the zone: %+v %v", s, err)
		}

		if v, err := svc.SavedBaseURL(ctx); err != nil || v != "" {
			t.Fatalf("base URL before any: %q %v", v, err)
		}
		for _, bad := range []string{"ftp://x", "mail.example.com", "https://", "https://a/?q=1", "https://u:p@a/"} {
			if err := svc.SaveBaseURL(ctx, bad); account.ErrorCode(err) != account.EINVALID {
				t.Errorf("%q saved: %v", bad, err)
			}
		}
		for _, u := range []string{"https://mail.example.com/", "http://localhost:8081"} {
			if err := svc.SaveBaseURL(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		if v, err := svc.SavedBaseURL(ctx); err != nil || v != "http://localhost:8081" {
			t.Fatalf("base URL: %q %v", v, err)
		}
	})
}
