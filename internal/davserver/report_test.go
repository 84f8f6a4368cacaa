package davserver_test

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
)

func calQuery(comp, start, end string) string {
	tr := ""
	if start != "" || end != "" {
		tr = `<C:time-range`
		if start != "" {
			tr += ` start="` + start + `"`
		}
		if end != "" {
			tr += ` end="` + end + `"`
		}
		tr += `/>`
	}
	return `<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
		<D:prop><D:getetag/><C:calendar-data/></D:prop>
		<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="` + comp + `">` + tr + `</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`
}

func names(m ms, prefix string) []string {
	var out []string
	for _, h := range m.hrefs() {
		out = append(out, strings.TrimPrefix(h, prefix))
	}
	sort.Strings(out)
	return out
}

func TestCalendarQuery(t *testing.T) {
	e := newEnv(t)
	put := func(name, body string) {
		t.Helper()
		e.want(e.as("PUT", cal+name, body), http.StatusCreated)
	}
	put("jan2.ics", event("jan2", "20300102T100000Z", "20300102T110000Z"))
	put("allday.ics", strings.Replace(strings.Replace(event("allday", "X", "Y"), "DTSTART:X", "DTSTART;VALUE=DATE:20300105", 1), "DTEND:Y", "DTEND;VALUE=DATE:20300106", 1))
	put("weekly.ics", event("weekly", "20300107T090000Z", "20300107T100000Z", "RRULE:FREQ=WEEKLY;COUNT=3\r\n"))
	put("forever.ics", event("forever", "20290101T120000Z", "20290101T130000Z", "RRULE:FREQ=YEARLY\r\n"))
	put("zoned.ics", strings.Replace(strings.Replace(event("zoned", "X", "Y"), "DTSTART:X", "DTSTART;TZID=Europe/Berlin:20300110T100000", 1), "DTEND:Y", "DTEND;TZID=Europe/Berlin:20300110T110000", 1))
	put("duration.ics", strings.Replace(event("duration", "20300112T100000Z", "X"), "DTEND:X", "DURATION:PT2H", 1))
	put("todo.ics", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:todo\r\nDTSTAMP:20300101T000000Z\r\nDUE:20300103T120000Z\r\nSUMMARY:Do it\r\nEND:VTODO\r\nEND:VCALENDAR\r\n")
	for _, tc := range []struct {
		comp, start, end string
		want             []string
	}{
		{"VEVENT", "20300102T000000Z", "20300103T000000Z", []string{"jan2.ics"}},
		// The range end is exclusive, the start inclusive.
		{"VEVENT", "20300102T110000Z", "20300102T120000Z", nil},
		{"VEVENT", "20300102T100000Z", "20300102T100001Z", []string{"jan2.ics"}},
		{"VEVENT", "20300105T120000Z", "20300105T130000Z", []string{"allday.ics"}},
		// The third weekly instance, not a week after the last.
		{"VEVENT", "20300121T000000Z", "20300122T000000Z", []string{"weekly.ics"}},
		{"VEVENT", "20300128T000000Z", "20300129T000000Z", nil},
		// An unbounded yearly series, far in the future.
		{"VEVENT", "20400101T000000Z", "20400102T000000Z", []string{"forever.ics"}},
		{"VEVENT", "20400102T000000Z", "20400103T000000Z", nil},
		// 10:00 in Berlin is 09:00 UTC in winter.
		{"VEVENT", "20300110T090000Z", "20300110T091500Z", []string{"zoned.ics"}},
		{"VEVENT", "20300110T100000Z", "20300110T110000Z", nil},
		{"VEVENT", "20300112T113000Z", "20300112T130000Z", []string{"duration.ics"}},
		{"VTODO", "20300103T000000Z", "20300104T000000Z", []string{"todo.ics"}},
		{"VTODO", "20300104T000000Z", "20300105T000000Z", nil},
		{"VTODO", "", "", []string{"todo.ics"}},
	} {
		m := parseMS(t, e.as("REPORT", cal, calQuery(tc.comp, tc.start, tc.end), "Depth", "1"))
		if got := names(m, cal); !slices.Equal(got, tc.want) {
			t.Errorf("%s %s..%s: %v, want %v", tc.comp, tc.start, tc.end, got, tc.want)
		}
	}
	// calendar-data and getetag come back with each match.
	m := parseMS(t, e.as("REPORT", cal, calQuery("VEVENT", "20300102T000000Z", "20300103T000000Z"), "Depth", "1"))
	if v, _ := m.prop(cal+"jan2.ics", "calendar-data"); !strings.Contains(v, "UID:jan2") {
		t.Fatalf("calendar-data: %q", v)
	}
	// A text-match on SUMMARY, case-insensitive.
	q := `<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop>
		<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY">
		<C:text-match>EVENT WEEK</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`
	if got := names(parseMS(t, e.as("REPORT", cal, q)), cal); !slices.Equal(got, []string{"weekly.ics"}) {
		t.Fatalf("text-match: %v", got)
	}
}

func TestMultiget(t *testing.T) {
	e := newEnv(t)
	e.want(e.as("PUT", cal+"a.ics", event("a", "20300102T100000Z", "20300102T110000Z")), http.StatusCreated)
	e.want(e.as("PUT", cal+"b%40x.ics", event("b", "20300102T100000Z", "20300102T110000Z")), http.StatusCreated)
	q := `<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/></D:prop>
		<D:href>` + cal + `a.ics</D:href><D:href>http://host` + cal + `b%40x.ics</D:href><D:href>` + cal + `gone.ics</D:href>
		<D:href>/dav/calendars/bob@example.com/default/a.ics</D:href></C:calendar-multiget>`
	m := parseMS(t, e.as("REPORT", cal, q, "Depth", "1"))
	if v, _ := m.prop(cal+"a.ics", "calendar-data"); !strings.Contains(v, "UID:a") {
		t.Fatalf("a: %v", m.hrefs())
	}
	if v, _ := m.prop(cal+"b@x.ics", "calendar-data"); !strings.Contains(v, "UID:b") {
		t.Fatalf("b@x: %v", m.hrefs())
	}
	if !strings.Contains(m.status(cal+"gone.ics"), "404") || !strings.Contains(m.status("/dav/calendars/bob@example.com/default/a.ics"), "404") {
		t.Fatalf("missing hrefs: %s", m.hrefs())
	}
}

func TestAddressbookQueryAndMultiget(t *testing.T) {
	e := newEnv(t)
	book := "/dav/addressbooks/alice@example.com/default/"
	e.want(e.as("PUT", book+"ann.vcf", card("ann", "Ann Example", "ann@example.com"), "Content-Type", "text/vcard"), http.StatusCreated)
	e.want(e.as("PUT", book+"bob.vcf", card("bob", "Bob Other", "bob@other.org")), http.StatusCreated)
	query := func(filter string) []string {
		q := `<CR:addressbook-query xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><CR:address-data/></D:prop>` + filter + `</CR:addressbook-query>`
		return names(parseMS(t, e.as("REPORT", book, q, "Depth", "1")), book)
	}
	for filter, want := range map[string][]string{
		`<CR:filter><CR:prop-filter name="FN"><CR:text-match match-type="contains">ann</CR:text-match></CR:prop-filter></CR:filter>`:                                                                          {"ann.vcf"},
		`<CR:filter><CR:prop-filter name="EMAIL"><CR:text-match match-type="ends-with">OTHER.ORG</CR:text-match></CR:prop-filter></CR:filter>`:                                                                {"bob.vcf"},
		`<CR:filter><CR:prop-filter name="FN"><CR:text-match match-type="equals">Bob</CR:text-match></CR:prop-filter></CR:filter>`:                                                                            nil,
		`<CR:filter test="anyof"><CR:prop-filter name="FN"><CR:text-match>ann</CR:text-match></CR:prop-filter><CR:prop-filter name="EMAIL"><CR:text-match>other</CR:text-match></CR:prop-filter></CR:filter>`: {"ann.vcf", "bob.vcf"},
		`<CR:filter test="allof"><CR:prop-filter name="FN"><CR:text-match>ann</CR:text-match></CR:prop-filter><CR:prop-filter name="EMAIL"><CR:text-match>other</CR:text-match></CR:prop-filter></CR:filter>`: nil,
		`<CR:filter><CR:prop-filter name="NICKNAME"><CR:is-not-defined/></CR:prop-filter></CR:filter>`:                                                                                                        {"ann.vcf", "bob.vcf"},
		`<CR:filter><CR:prop-filter name="FN"><CR:text-match negate-condition="yes">ann</CR:text-match></CR:prop-filter></CR:filter>`:                                                                         {"bob.vcf"},
		``: {"ann.vcf", "bob.vcf"},
	} {
		if got := query(filter); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", filter, got, want)
		}
	}
	q := `<CR:addressbook-multiget xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><CR:address-data/></D:prop>
		<D:href>` + book + `bob.vcf</D:href></CR:addressbook-multiget>`
	m := parseMS(t, e.as("REPORT", book, q))
	if v, _ := m.prop(book+"bob.vcf", "address-data"); !strings.Contains(v, "FN:Bob Other") {
		t.Fatalf("multiget: %v", m.hrefs())
	}
	// A calendar report on an address book is refused.
	if r := e.as("REPORT", book, calQuery("VEVENT", "", "")); r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "supported-report") {
		t.Fatalf("calendar-query on address book: %d %s", r.StatusCode, r.body)
	}
}

func syncReport(token string) string {
	return `<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>` + token +
		`</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`
}

func TestSyncCollection(t *testing.T) {
	e := newEnv(t)
	e.want(e.as("PUT", cal+"a.ics", event("a", "20300102T100000Z", "20300102T110000Z")), http.StatusCreated)
	e.want(e.as("PUT", cal+"b.ics", event("b", "20300102T100000Z", "20300102T110000Z")), http.StatusCreated)
	e.want(e.as("DELETE", cal+"b.ics", ""), http.StatusNoContent)
	m := parseMS(t, e.as("REPORT", cal, syncReport("")))
	if got := names(m, cal); !slices.Equal(got, []string{"a.ics"}) || m.SyncToken == "" {
		t.Fatalf("initial sync: %v %q", got, m.SyncToken)
	}
	if _, ok := m.prop(cal+"a.ics", "getetag"); !ok {
		t.Fatal("no getetag in sync response")
	}
	tok := m.SyncToken
	m = parseMS(t, e.as("REPORT", cal, syncReport(tok)))
	if len(m.Responses) != 0 || m.SyncToken != tok {
		t.Fatalf("no change: %v %q", m.hrefs(), m.SyncToken)
	}
	e.want(e.as("PUT", cal+"c.ics", event("c", "20300102T100000Z", "20300102T110000Z")), http.StatusCreated)
	e.want(e.as("DELETE", cal+"a.ics", ""), http.StatusNoContent)
	m = parseMS(t, e.as("REPORT", cal, syncReport(tok)))
	if got := names(m, cal); !slices.Equal(got, []string{"a.ics", "c.ics"}) || !strings.Contains(m.status(cal+"a.ics"), "404") || m.SyncToken == tok {
		t.Fatalf("changes: %v a=%q token %q", got, m.status(cal+"a.ics"), m.SyncToken)
	}
	for _, bad := range []string{"urn:postern:sync:999:1", "garbage", m.SyncToken[:strings.LastIndex(m.SyncToken, ":")] + ":99"} {
		r := e.as("REPORT", cal, syncReport(bad))
		if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "valid-sync-token") {
			t.Errorf("token %q: %d %s", bad, r.StatusCode, r.body)
		}
	}
	// A token of a deleted and re-created calendar is invalid.
	e.want(e.as("DELETE", cal, ""), http.StatusNoContent)
	e.want(e.as("MKCALENDAR", cal, ""), http.StatusCreated)
	if r := e.as("REPORT", cal, syncReport(m.SyncToken)); r.StatusCode != http.StatusForbidden {
		t.Errorf("token of a re-created calendar: %d", r.StatusCode)
	}
}
