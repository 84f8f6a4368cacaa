package davserver_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestWellKnown(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/.well-known/caldav", "/.well-known/carddav"} {
		r := e.do("PROPFIND", p, "", "", "")
		if r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "/dav/" {
			t.Errorf("%s: %d %q", p, r.StatusCode, r.Header.Get("Location"))
		}
	}
}

func TestOptions(t *testing.T) {
	e := newEnv(t)
	r := e.want(e.as("OPTIONS", "/dav/calendars/alice@example.com/default/", ""), http.StatusOK)
	if got := r.Header.Get("DAV"); got != "1, 3, calendar-access, addressbook, extended-mkcol" {
		t.Fatalf("DAV: %q", got)
	}
	if !strings.Contains(r.Header.Get("Allow"), "REPORT") {
		t.Fatalf("Allow: %q", r.Header.Get("Allow"))
	}
}

// The discovery chain of RFC 6764 §6 and RFC 4791 §6.2.1.
func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	body := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:current-user-principal/></D:prop></D:propfind>`
	m := parseMS(t, e.as("PROPFIND", "/dav/", body, "Depth", "0"))
	if v, ok := m.prop("/dav/", "current-user-principal"); !ok || !strings.Contains(v, "/dav/principals/alice@example.com/") {
		t.Fatalf("current-user-principal: %q", v)
	}
	body = `<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CR="urn:ietf:params:xml:ns:carddav">
		<D:prop><C:calendar-home-set/><CR:addressbook-home-set/><D:principal-URL/><D:displayname/><D:resourcetype/><C:calendar-user-address-set/><D:nope/></D:prop></D:propfind>`
	p := "/dav/principals/alice@example.com/"
	m = parseMS(t, e.as("PROPFIND", p, body, "Depth", "0"))
	for prop, want := range map[string]string{
		"calendar-home-set":         "/dav/calendars/alice@example.com/",
		"addressbook-home-set":      "/dav/addressbooks/alice@example.com/",
		"principal-URL":             p,
		"displayname":               "Name of alice@example.com",
		"resourcetype":              "principal",
		"calendar-user-address-set": "mailto:alice@example.com",
	} {
		if v, ok := m.prop(p, prop); !ok || !strings.Contains(v, want) {
			t.Errorf("%s: %q, want %q", prop, v, want)
		}
	}
	if !strings.Contains(m.Responses[0].Propstat[1].Status, "404") {
		t.Errorf("unknown property not 404: %+v", m.Responses[0].Propstat)
	}
	// The homes list the defaults, created on first use.
	m = parseMS(t, e.as("PROPFIND", "/dav/calendars/alice@example.com/", propfindAll, "Depth", "1"))
	cal := "/dav/calendars/alice@example.com/default/"
	if v, ok := m.prop(cal, "resourcetype"); !ok || !strings.Contains(v, "calendar") {
		t.Fatalf("default calendar: %v\n%s", m.hrefs(), v)
	}
	for _, prop := range []string{"getctag", "sync-token", "supported-calendar-component-set", "current-user-privilege-set", "displayname", "supported-report-set", "max-resource-size"} {
		if _, ok := m.prop(cal, prop); !ok {
			t.Errorf("calendar lacks %s", prop)
		}
	}
	m = parseMS(t, e.as("PROPFIND", "/dav/addressbooks/alice@example.com/", propfindAll, "Depth", "1"))
	if v, ok := m.prop("/dav/addressbooks/alice@example.com/default/", "resourcetype"); !ok || !strings.Contains(v, "addressbook") {
		t.Fatalf("default address book: %v", m.hrefs())
	}
}

func TestMkcalendarProppatchDelete(t *testing.T) {
	e := newEnv(t)
	home := "/dav/calendars/alice@example.com/"
	mk := `<?xml version="1.0"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:A="http://apple.com/ns/ical/">
		<D:set><D:prop><D:displayname>Work</D:displayname><C:calendar-description>Meetings</C:calendar-description>
		<A:calendar-color>#FF8800</A:calendar-color><C:supported-calendar-component-set><C:comp name="VTODO"/></C:supported-calendar-component-set>
		<C:calendar-timezone>BEGIN:VCALENDAR...</C:calendar-timezone></D:prop></D:set></C:mkcalendar>`
	e.want(e.as("MKCALENDAR", home+"work/", mk), http.StatusCreated)
	e.want(e.as("MKCALENDAR", home+"work/", mk), http.StatusMethodNotAllowed)
	m := parseMS(t, e.as("PROPFIND", home+"work/", propfindAll, "Depth", "0"))
	for prop, want := range map[string]string{"displayname": "Work", "calendar-description": "Meetings", "calendar-color": "#FF8800", "supported-calendar-component-set": `name="VTODO"`} {
		if v, _ := m.prop(home+"work/", prop); !strings.Contains(v, want) {
			t.Errorf("%s: %q", prop, v)
		}
	}
	ctag, _ := m.prop(home+"work/", "getctag")
	// A VEVENT does not go into a VTODO-only calendar.
	r := e.as("PUT", home+"work/e.ics", event("e1", "20300101T100000Z", "20300101T110000Z"))
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "supported-calendar-component") {
		t.Fatalf("VEVENT into VTODO calendar: %d %s", r.StatusCode, r.body)
	}

	patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:A="http://apple.com/ns/ical/">
		<D:set><D:prop><D:displayname>Work &amp; more</D:displayname><A:calendar-color>#00FF00FF</A:calendar-color></D:prop></D:set>
		<D:remove><D:prop><C:calendar-description/></D:prop></D:remove></D:propertyupdate>`
	m = parseMS(t, e.as("PROPPATCH", home+"work/", patch))
	if _, ok := m.prop(home+"work/", "displayname"); !ok {
		t.Fatalf("proppatch: %+v", m)
	}
	m = parseMS(t, e.as("PROPFIND", home+"work/", propfindAll, "Depth", "0"))
	if v, _ := m.prop(home+"work/", "displayname"); v != "Work &amp; more" {
		t.Errorf("displayname after PROPPATCH: %q", v)
	}
	if v, _ := m.prop(home+"work/", "calendar-color"); v != "#00FF00FF" {
		t.Errorf("color after PROPPATCH: %q", v)
	}
	if _, ok := m.prop(home+"work/", "calendar-description"); ok {
		t.Error("description not removed")
	}
	if v, _ := m.prop(home+"work/", "getctag"); v == ctag {
		t.Error("getctag unchanged by PROPPATCH")
	}
	// All or nothing (RFC 4918 §9.2): an unknown property fails the update.
	bad := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:X="urn:x"><D:set><D:prop><D:displayname>Changed</D:displayname><X:other>1</X:other></D:prop></D:set></D:propertyupdate>`
	r = e.as("PROPPATCH", home+"work/", bad)
	if !strings.Contains(r.body, "403 Forbidden") || !strings.Contains(r.body, "424 Failed Dependency") {
		t.Fatalf("partial proppatch: %s", r.body)
	}
	m = parseMS(t, e.as("PROPFIND", home+"work/", propfindAll, "Depth", "0"))
	if v, _ := m.prop(home+"work/", "displayname"); v != "Work &amp; more" {
		t.Errorf("failed PROPPATCH changed displayname: %q", v)
	}

	e.want(e.as("DELETE", home+"work/", ""), http.StatusNoContent)
	e.want(e.as("PROPFIND", home+"work/", "", "Depth", "0"), http.StatusNotFound)
	e.want(e.as("DELETE", home, ""), http.StatusForbidden)
}

func TestExtendedMkcol(t *testing.T) {
	e := newEnv(t)
	home := "/dav/addressbooks/alice@example.com/"
	mk := `<?xml version="1.0"?><D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:set><D:prop>
		<D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype><D:displayname>Friends</D:displayname>
		<CR:addressbook-description>People</CR:addressbook-description></D:prop></D:set></D:mkcol>`
	e.want(e.as("MKCOL", home+"friends/", mk), http.StatusCreated)
	m := parseMS(t, e.as("PROPFIND", home+"friends/", propfindAll, "Depth", "0"))
	if v, _ := m.prop(home+"friends/", "addressbook-description"); v != "People" {
		t.Errorf("description: %q", v)
	}
	// A calendar resourcetype does not belong in the address book home.
	cal := strings.ReplaceAll(mk, "<CR:addressbook/>", `<C:calendar xmlns:C="urn:ietf:params:xml:ns:caldav"/>`)
	if r := e.as("MKCOL", home+"cal/", cal); r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "valid-resourcetype") {
		t.Fatalf("calendar in address book home: %d %s", r.StatusCode, r.body)
	}
	// Extended MKCOL of a calendar in the calendar home.
	calMk := `<?xml version="1.0"?><D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>
		<D:resourcetype><D:collection/><C:calendar/></D:resourcetype></D:prop></D:set></D:mkcol>`
	e.want(e.as("MKCOL", "/dav/calendars/alice@example.com/viamkcol/", calMk), http.StatusCreated)
	e.want(e.as("MKCALENDAR", home+"nocal/", ""), http.StatusForbidden)
}
