package davserver_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/davserver"
	"github.com/postern/postern/internal/store/storetest"
)

// secondly is an event recurring every second from 2030-01-01 00:00 UTC,
// without end.
func secondly(uid string, extra ...string) string {
	return event(uid, "20300101T000000Z", "20300101T000001Z", append([]string{"RRULE:FREQ=SECONDLY\r\n"}, extra...)...)
}

// wantMaxInstances checks a refused query: 403 with CALDAV:max-instances
// and a message containing text.
func wantMaxInstances(t *testing.T, r reply, text string) {
	t.Helper()
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "<C:max-instances/>") || !strings.Contains(r.body, text) {
		t.Fatalf("status %d, want 403 with max-instances and %q:\n%s", r.StatusCode, text, r.body)
	}
}

func TestCalendarQueryRecurrenceLimits(t *testing.T) {
	e := newEnvWith(t, storetest.OpenSQLite(t), func(c *davserver.Config) {
		c.MaxInstances = 1000
		c.MaxQueryInstances = 2500
	})
	query := func(start, end string) reply {
		t.Helper()
		return e.as("REPORT", cal, calQuery("VEVENT", start, end), "Depth", "1")
	}
	e.want(e.as("PUT", cal+"a.ics", secondly("a")), http.StatusCreated)
	// The first instance overlaps: found at once, however long the range.
	for _, end := range []string{"20300302T000000Z", "20310101T000000Z", "99990101T000000Z", ""} {
		if got := names(parseMS(t, query("20300101T000000Z", end)), cal); !slices.Equal(got, []string{"a.ics"}) {
			t.Fatalf("range to %q: %v", end, got)
		}
	}
	// 900 seconds in: 901 instances examined, within the object's 1000.
	if got := names(parseMS(t, query("20300101T001500Z", "20300101T001501Z")), cal); !slices.Equal(got, []string{"a.ics"}) {
		t.Fatalf("900 s in: %v", got)
	}
	// An hour in: more than 1000 instances before the range.
	wantMaxInstances(t, query("20300101T010000Z", "20300101T020000Z"), "The object a.ics recurs too often: more than 1000")
	// A range before the series ends the walk at its first instance.
	if got := names(parseMS(t, query("20290101T000000Z", "20291231T000000Z")), cal); got != nil {
		t.Fatalf("before the series: %v", got)
	}

	// Per request: two objects of 901 instances fit in 2500, three do not.
	e.want(e.as("PUT", cal+"b.ics", secondly("b")), http.StatusCreated)
	if got := names(parseMS(t, query("20300101T001500Z", "20300101T001501Z")), cal); !slices.Equal(got, []string{"a.ics", "b.ics"}) {
		t.Fatalf("two objects: %v", got)
	}
	e.want(e.as("PUT", cal+"c.ics", secondly("c")), http.StatusCreated)
	wantMaxInstances(t, query("20300101T001500Z", "20300101T001501Z"), "more than 2500 recurrence instances in total")

	// RDATE and EXDATE lists are instances like the rule's: an EXDATE on
	// every second of the first 900 pushes the first instance past the cap.
	var ex []string
	for i := 1; i <= 1000; i++ {
		ex = append(ex, time.Date(2030, 1, 1, 0, 0, i, 0, time.UTC).Format("20060102T150405Z"))
	}
	e.want(e.as("DELETE", cal+"b.ics", ""), http.StatusNoContent)
	e.want(e.as("DELETE", cal+"c.ics", ""), http.StatusNoContent)
	e.want(e.as("PUT", cal+"ex.ics", strings.Replace(secondly("ex"), "RRULE:FREQ=SECONDLY\r\n", "RRULE:FREQ=SECONDLY;COUNT=1002\r\nEXDATE:"+strings.Join(ex, ",")+"\r\n", 1)), http.StatusCreated)
	// The series is DTSTART and 00:16:41 only: a range in between matches
	// a.ics, not ex.ics.
	if got := names(parseMS(t, query("20300101T000100Z", "20300101T000101Z")), cal); !slices.Equal(got, []string{"a.ics"}) {
		t.Fatalf("EXDATEs: %v", got)
	}
}

func TestCalendarQueryExpansionTime(t *testing.T) {
	e := newEnvWith(t, storetest.OpenSQLite(t), func(c *davserver.Config) { c.MaxExpansionTime = time.Nanosecond })
	e.want(e.as("PUT", cal+"a.ics", secondly("a")), http.StatusCreated)
	wantMaxInstances(t, e.as("REPORT", cal, calQuery("VEVENT", "20300101T000000Z", "20300102T000000Z"), "Depth", "1"), "took longer than 1ns")
}

// Rules rrule-go cannot walk safely are refused when stored, and long ones
// are stored without walking them all.
func TestPutRecurrenceRules(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		rule   string
		status int
	}{
		// From second 0, INTERVAL=2 only reaches even seconds: the
		// iterator would search for ever.
		{"FREQ=SECONDLY;INTERVAL=2;BYSECOND=1;COUNT=3", http.StatusForbidden},
		{"FREQ=SECONDLY;INTERVAL=2;BYSECOND=2;COUNT=3", http.StatusCreated},
		{"FREQ=HOURLY;INTERVAL=6;BYHOUR=3", http.StatusForbidden},
		{"FREQ=HOURLY;INTERVAL=6;BYHOUR=3,12", http.StatusCreated},
		{"FREQ=MINUTELY;INTERVAL=7;BYMINUTE=3", http.StatusCreated}, // 7 and 1440 are coprime
		{"FREQ=MINUTELY;INTERVAL=120;BYHOUR=1", http.StatusForbidden},
		// Far more instances than the walk takes: stored, as unbounded.
		{"FREQ=SECONDLY;COUNT=2000000000", http.StatusCreated},
		{"FREQ=SECONDLY;UNTIL=99991231T235959Z", http.StatusCreated},
		// The same second twenty thousand times is one value.
		{"FREQ=MINUTELY;BYSECOND=0" + strings.Repeat(",0", 20000), http.StatusCreated},
	} {
		name := strings.NewReplacer(";", "-", "=", "-", ",", "").Replace(tc.rule)
		if len(name) > 60 {
			name = name[:60]
		}
		r := e.as("PUT", cal+name+".ics", event(name, "20300101T000000Z", "20300101T000001Z", "RRULE:"+tc.rule+"\r\n"))
		if r.StatusCode != tc.status {
			t.Fatalf("%.80s: %d, want %d\n%s", tc.rule, r.StatusCode, tc.status, r.body)
		}
		if tc.status == http.StatusForbidden && !strings.Contains(r.body, "valid-calendar-data") {
			t.Fatalf("%s: %s", tc.rule, r.body)
		}
	}
	// Every stored series is found where it starts; the endless ones also a
	// day later (the index did not cut them short).
	m := parseMS(t, e.as("REPORT", cal, calQuery("VEVENT", "20300102T000000Z", "20300102T000100Z"), "Depth", "1"))
	for _, want := range []string{"FREQ-SECONDLY-COUNT-2000000000.ics", "FREQ-SECONDLY-UNTIL-99991231T235959Z.ics", "FREQ-MINUTELY-BYSECOND-0000000000000000000000000000000000000.ics"} {
		if !slices.Contains(names(m, cal), want) {
			t.Errorf("%s not found a day later: %v", want, names(m, cal))
		}
	}
}
