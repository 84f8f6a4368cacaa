package davserver

import (
	"bytes"
	"context"
	"encoding/xml"
	"testing"
	"time"
)

// The iCalendar and vCard parsers and the index never panic, and an object
// they accept has a component type and sane bounds.
func FuzzParseCalendar(f *testing.F) {
	f.Add([]byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20300101T100000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY;COUNT=3\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"))
	f.Add([]byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nUID:t\r\nDUE;VALUE=DATE:20300101\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"))
	f.Add([]byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART;TZID=Nowhere/Zone:20300101T100000\r\nRRULE:FREQ=WEEKLY;UNTIL=20300301T000000Z\r\nEXDATE:20300108T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		x := &expansion{ctx: context.Background(), deadline: time.Now().Add(time.Minute), perObject: 10000, left: 10000}
		cal, o, err := parseCalendar(data, x)
		if err != nil {
			return
		}
		if o.Component == "" || o.UID == "" {
			t.Fatalf("accepted without component or UID: %+v", o)
		}
		if !o.Start.IsZero() && !o.End.IsZero() && o.End.Before(o.Start) {
			t.Fatalf("end before start: %v %v", o.Start, o.End)
		}
		qs := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, c := range cal.Children {
			x.object, x.left = 0, 10000
			matchTimeRange(c, qs, qs.Add(48*time.Hour), x)
		}
	})
}

func FuzzParseCard(f *testing.F) {
	f.Add([]byte("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x\r\nFN:X\r\nEND:VCARD\r\n"))
	f.Add([]byte("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:X\r\nEMAIL;TYPE=work:x@y\r\nEND:VCARD\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		card, o, err := parseCard(data)
		if err == nil && (o.Component != "VCARD" || card == nil) {
			t.Fatalf("accepted: %+v", o)
		}
	})
}

// Report bodies: the XML tree and the filter parsers never panic.
func FuzzReportBody(f *testing.F) {
	f.Add([]byte(`<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="20300101T000000Z"/><C:prop-filter name="SUMMARY"><C:text-match collation="i;octet">x</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`))
	f.Add([]byte(`<CR:addressbook-query xmlns:CR="urn:ietf:params:xml:ns:carddav"><CR:filter test="allof"><CR:prop-filter name="FN"><CR:param-filter name="TYPE"><CR:is-not-defined/></CR:param-filter></CR:prop-filter></CR:filter></CR:addressbook-query>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var n node
		if xml.NewDecoder(bytes.NewReader(data)).Decode(&n) != nil {
			return
		}
		if fe := n.child(name(nsCalDAV, "filter")); fe != nil {
			if top := fe.child(name(nsCalDAV, "comp-filter")); top != nil {
				parseCompFilter(top)
			}
		}
		if f, err := parseCardFilter(n.child(name(nsCardDAV, "filter"))); err == nil {
			_, _, _ = parseCard([]byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:X\r\nEND:VCARD\r\n"))
			f.match(nil)
		}
		parsePropReq(&n)
	})
}
