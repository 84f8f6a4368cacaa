package account

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // members' time zones work on hosts without a zoneinfo database
)

var zones sync.Map // name -> *time.Location

// LoadZone returns the IANA time zone name ("Asia/Tokyo"); ok is false for
// anything else, "Local" and "" included (the server's own zone means
// nothing to a member).
func LoadZone(name string) (loc *time.Location, ok bool) {
	if name == "" || len(name) > 64 || name == "Local" {
		return nil, false
	}
	for _, ch := range name {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.ContainsRune("/_-+", ch)) {
			return nil, false
		}
	}
	if v, ok := zones.Load(name); ok {
		return v.(*time.Location), true
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, false
	}
	zones.Store(name, loc)
	return loc, true
}

// Location returns the member's time zone, UTC when none is recorded (or
// the store does not answer: a time in UTC is still right).
func (s *Service) Location(ctx context.Context, memberID int64) *time.Location {
	loc, _, _ := s.Zone(ctx, memberID)
	return loc
}

// Zone is Location, and whether the member has a zone recorded; err is the
// store's, with loc UTC.
func (s *Service) Zone(ctx context.Context, memberID int64) (loc *time.Location, set bool, err error) {
	name, err := s.store.TimeZone(ctx, memberID)
	if err != nil {
		s.Log.Warn("read the member's time zone", "err", err)
	}
	if loc, ok := LoadZone(name); ok {
		return loc, true, nil
	}
	return time.UTC, false, err
}

// SetTimeZone records the member's choice of time zone (an IANA name): the
// web UI and the notices to the member show times in it.
func (s *Service) SetTimeZone(ctx context.Context, memberID int64, name string) error {
	if _, ok := LoadZone(name); !ok {
		return Errorf(EINVALID, "%.64q is not a time zone: choose one from the list, such as Asia/Tokyo.", name).withReason("timezone")
	}
	return s.store.SetTimeZone(ctx, memberID, name, false)
}

// DefaultTimeZone records name, the zone the member's browser reports, as
// the member's time zone unless one is recorded already; an unknown name
// is ignored.
func (s *Service) DefaultTimeZone(ctx context.Context, memberID int64, name string) error {
	if _, ok := LoadZone(name); !ok {
		return nil
	}
	return s.store.SetTimeZone(ctx, memberID, name, true)
}

// FormatTime is how English text shows t to a member: in loc, with the
// zone's abbreviation ("Mar 1, 2025, 18:00 JST").
func FormatTime(loc *time.Location, t time.Time) string {
	return t.In(loc).Format("Jan 2, 2006, 15:04 MST")
}

// settingBaseURL is the server setting that holds the public base URL.
const settingBaseURL = "base_url"

// CheckBaseURL checks a public base URL: http or https, a host, nothing
// after the path.
func CheckBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return Errorf(EINVALID, "%.100q is not a base URL such as https://mail.example.com.", raw)
	}
	return nil
}

// SavedBaseURL returns the public base URL saved by SaveBaseURL, "" when
// none was.
func (s *Service) SavedBaseURL(ctx context.Context) (string, error) {
	return s.store.ServerSetting(ctx, settingBaseURL)
}

// SaveBaseURL records the public base URL of the web UI, so that every
// command, on any node, links to it without being told again.
func (s *Service) SaveBaseURL(ctx context.Context, raw string) error {
	if err := CheckBaseURL(raw); err != nil {
		return err
	}
	return s.store.SetServerSetting(ctx, settingBaseURL, strings.TrimSuffix(raw, "/"))
}
