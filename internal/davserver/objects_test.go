package davserver_test

import (
	"net/http"
	"strings"
	"testing"
)

const cal = "/dav/calendars/alice@example.com/default/"

func TestPutGetPreconditions(t *testing.T) {
	e := newEnv(t)
	p := cal + "a.ics"
	body := event("a", "20300101T100000Z", "20300101T110000Z")
	r := e.want(e.as("PUT", p, body, "Content-Type", "text/calendar", "If-None-Match", "*"), http.StatusCreated)
	etag := r.Header.Get("ETag")
	if etag == "" || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("ETag: %q", etag)
	}
	// If-None-Match: * refuses to overwrite.
	e.want(e.as("PUT", p, body, "If-None-Match", "*"), http.StatusPreconditionFailed)
	g := e.want(e.as("GET", p, ""), http.StatusOK)
	if g.body != body || g.Header.Get("ETag") != etag || !strings.HasPrefix(g.Header.Get("Content-Type"), "text/calendar") {
		t.Fatalf("GET: %q %q", g.Header.Get("ETag"), g.body)
	}
	e.want(e.as("GET", p, "", "If-None-Match", etag), http.StatusNotModified)
	// Two clients edit from the same ETag: the second is refused.
	r = e.want(e.as("PUT", p, strings.Replace(body, "SUMMARY:Event a", "SUMMARY:First", 1), "If-Match", etag), http.StatusNoContent)
	newTag := r.Header.Get("ETag")
	e.want(e.as("PUT", p, strings.Replace(body, "SUMMARY:Event a", "SUMMARY:Second", 1), "If-Match", etag), http.StatusPreconditionFailed)
	if g := e.as("GET", p, ""); !strings.Contains(g.body, "SUMMARY:First") {
		t.Fatalf("lost update: %s", g.body)
	}
	// If-Match on a missing object, and on DELETE.
	e.want(e.as("PUT", cal+"missing.ics", event("m", "20300101T100000Z", "20300101T110000Z"), "If-Match", "*"), http.StatusPreconditionFailed)
	e.want(e.as("DELETE", p, "", "If-Match", etag), http.StatusPreconditionFailed)
	e.want(e.as("DELETE", p, "", "If-Match", `W/`+newTag), http.StatusNoContent)
	e.want(e.as("GET", p, ""), http.StatusNotFound)
	e.want(e.as("DELETE", p, ""), http.StatusNotFound)
	// PROPFIND of an object gives its ETag.
	r = e.want(e.as("PUT", p, body), http.StatusCreated)
	m := parseMS(t, e.as("PROPFIND", p, `<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>`, "Depth", "0"))
	if v, _ := m.prop(p, "getetag"); v != strings.ReplaceAll(r.Header.Get("ETag"), `"`, "&#34;") && v != r.Header.Get("ETag") {
		t.Fatalf("getetag %q vs ETag %q", v, r.Header.Get("ETag"))
	}
	// Missing parent collection: 409 (RFC 4918 §9.7.1).
	e.want(e.as("PUT", "/dav/calendars/alice@example.com/nope/x.ics", body), http.StatusConflict)
}

func TestPutValidation(t *testing.T) {
	e := newEnv(t)
	for name, tc := range map[string]struct {
		path, body, cond string
		status           int
	}{
		"garbage":         {cal + "x.ics", "hello", "valid-calendar-data", 403},
		"no uid":          {cal + "x.ics", strings.Replace(event("u", "20300101T100000Z", "20300101T110000Z"), "UID:u\r\n", "", 1), "valid-calendar-data", 403},
		"method":          {cal + "x.ics", strings.Replace(event("u", "20300101T100000Z", "20300101T110000Z"), "VERSION:2.0\r\n", "VERSION:2.0\r\nMETHOD:REQUEST\r\n", 1), "valid-calendar-data", 403},
		"vcard no fn":     {"/dav/addressbooks/alice@example.com/default/x.vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x\r\nEND:VCARD\r\n", "valid-address-data", 403},
		"vcard in cal":    {cal + "x.ics", card("c", "C", "c@example.com"), "valid-calendar-data", 403},
		"too big":         {cal + "big.ics", event("big", "20300101T100000Z", "20300101T110000Z", "DESCRIPTION:"+strings.Repeat("x", 70<<10)+"\r\n"), "max-resource-size", 413},
		"two cards":       {"/dav/addressbooks/alice@example.com/default/x.vcf", card("1", "A", "a@x") + card("2", "B", "b@x"), "valid-address-data", 403},
		"vcard version 2": {"/dav/addressbooks/alice@example.com/default/x.vcf", strings.Replace(card("1", "A", "a@x"), "3.0", "2.1", 1), "valid-address-data", 403},
	} {
		r := e.as("PUT", tc.path, tc.body)
		if r.StatusCode != tc.status || !strings.Contains(r.body, tc.cond) || !strings.Contains(r.body, "<P:message>") {
			t.Errorf("%s: %d %s", name, r.StatusCode, r.body)
		}
	}
	// One UID per calendar.
	e.want(e.as("PUT", cal+"one.ics", event("same", "20300101T100000Z", "20300101T110000Z")), http.StatusCreated)
	r := e.as("PUT", cal+"two.ics", event("same", "20300102T100000Z", "20300102T110000Z"))
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "no-uid-conflict") || !strings.Contains(r.body, cal+"one.ics") {
		t.Fatalf("uid conflict: %d %s", r.StatusCode, r.body)
	}
}

func TestCTagChanges(t *testing.T) {
	e := newEnv(t)
	get := func() string {
		m := parseMS(t, e.as("PROPFIND", cal, `<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><D:prop><CS:getctag/></D:prop></D:propfind>`, "Depth", "0"))
		v, _ := m.prop(cal, "getctag")
		return v
	}
	c0 := get()
	e.want(e.as("PUT", cal+"a.ics", event("a", "20300101T100000Z", "20300101T110000Z")), http.StatusCreated)
	c1 := get()
	e.want(e.as("DELETE", cal+"a.ics", ""), http.StatusNoContent)
	if c2 := get(); c0 == c1 || c1 == c2 || c0 == "" {
		t.Fatalf("ctags: %q %q %q", c0, c1, c2)
	}
}
