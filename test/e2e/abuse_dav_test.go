package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// calendarQuery is a calendar-query REPORT body for VEVENTs overlapping
// [start, end).
func calendarQuery(start, end string) string {
	return `<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop>` +
		`<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="` + start + `" end="` + end + `"/>` +
		`</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`
}

// peakRSS is the server process's peak resident set (VmHWM) in KiB.
func peakRSS(t *testing.T, srv *Server) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", srv.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", srv.cmd.Process.Pid)
	return 0
}

// TestAbuseDAVSecondly: a member stores an event recurring every second
// without end and queries it with curl. A range its first instance
// overlaps is answered at once, however long; a range no instance reaches
// within the expansion limit (100,000 instances per object) is refused with
// CALDAV:max-instances; the server's peak memory stays where it was (it
// grew by about 400 MiB for the 60-day query and 2.3 GB for the year when
// every instance was computed first).
func TestAbuseDAVSecondly(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		t.Parallel()
		pass, _ := davMember(t, in)
		srv := in.StartServer(t)
		user := "alice@example.com"
		cal := srv.URL("/dav/calendars/" + user + "/default/")
		ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//postern e2e//EN\r\nBEGIN:VEVENT\r\nUID:secondly\r\nDTSTAMP:20300101T000000Z\r\n" +
			"DTSTART:20300101T000000Z\r\nDTEND:20300101T000001Z\r\nRRULE:FREQ=SECONDLY\r\nSUMMARY:Every second\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
		if _, code := curl(t, user, pass, "-X", "PUT", "-H", "Content-Type: text/calendar", "--data-binary", ics, cal+"secondly.ics"); code != 201 {
			t.Fatalf("PUT: %d", code)
		}
		before := peakRSS(t, srv)
		report := func(start, end string) (string, int) {
			t.Helper()
			return curl(t, user, pass, "-X", "REPORT", "-H", "Depth: 1", "-H", "Content-Type: application/xml", "--data", calendarQuery(start, end), cal)
		}
		for _, end := range []string{"20300302T000000Z", "20310101T000000Z"} { // 60 days, a year
			body, code := report("20300101T000000Z", end)
			if code != 207 || !strings.Contains(body, "secondly.ics") {
				t.Fatalf("query to %s: %d %s", end, code, body)
			}
		}
		body, code := report("20310101T000000Z", "20310102T000000Z")
		if code != 403 || !strings.Contains(body, "<C:max-instances/>") || !strings.Contains(body, "secondly.ics recurs too often") {
			t.Fatalf("query a year later: %d %s", code, body)
		}
		// The server still answers, and its peak resident set grew by far
		// less than one materialised day of instances.
		if body, code := report("20300101T000000Z", "20300102T000000Z"); code != 207 || !strings.Contains(body, "secondly.ics") {
			t.Fatalf("after the refusal: %d %s", code, body)
		}
		after := peakRSS(t, srv)
		t.Logf("server VmHWM %d KiB before the queries, %d KiB after", before, after)
		if after-before > 64<<10 {
			t.Errorf("peak RSS grew by %d KiB (from %d KiB) during the queries", after-before, before)
		}
	})
}

// authAttempts is the number of DAV logins the gateway has seen.
func authAttempts(t *testing.T, srv *Server) float64 {
	t.Helper()
	_, body := httpGet(t, srv.MetricsURL())
	var n float64
	for _, m := range regexp.MustCompile(`(?m)^postern_auth_attempts_total\{[^}]*protocol="(?:caldav|carddav)"[^}]*\} (\S+)$`).FindAllStringSubmatch(body, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		n += v
	}
	return n
}

// TestAbuseDAVPlaintext: with --plaintext-auth never, Basic credentials over
// plain HTTP are refused with 403 and the reason, before they reach the
// gateway, even from loopback; a trusted load balancer that ended TLS
// (X-Forwarded-Proto: https from --trusted-proxies) is believed, the same
// header from any other address is not. With loopback, 127.0.0.1 logs in.
func TestAbuseDAVPlaintext(t *testing.T) {
	in := NewSQLite(t)
	pass, _ := davMember(t, in)
	user := "alice@example.com"
	propfind := func(srv *Server, password string, extra ...string) (code int, body, headers string) {
		t.Helper()
		hdrFile := filepath.Join(t.TempDir(), "headers")
		args := append([]string{"-X", "PROPFIND", "-H", "Depth: 0", "-D", hdrFile}, extra...)
		body, code = curl(t, user, password, append(args, srv.URL("/dav/"))...)
		h, err := os.ReadFile(hdrFile)
		if err != nil {
			t.Fatal(err)
		}
		return code, body, string(h)
	}
	refused := func(srv *Server, password string, extra ...string) {
		t.Helper()
		before := authAttempts(t, srv)
		code, body, headers := propfind(srv, password, extra...)
		if code != 403 || !strings.Contains(body, "Use HTTPS: passwords are not accepted over plain HTTP") ||
			strings.Contains(strings.ToLower(headers), "www-authenticate") {
			t.Fatalf("%v: %d %q\n%s", extra, code, body, headers)
		}
		if n := authAttempts(t, srv) - before; n != 0 {
			t.Fatalf("%v: the gateway saw %v attempts", extra, n)
		}
	}

	srv := in.StartServer(t, "--plaintext-auth", "never", "--trusted-proxies", "127.0.0.1")
	refused(srv, pass)
	refused(srv, pass+"wrong")
	// Another loopback address is no load balancer: its header is ignored.
	refused(srv, pass, "--interface", "127.0.0.2", "-H", "X-Forwarded-Proto: https", "-H", "X-Forwarded-For: 203.0.113.9")
	refused(srv, pass, "-H", "X-Forwarded-Proto: http", "-H", "X-Forwarded-For: 203.0.113.9")
	if !srv.WaitStderr("dav request without TLS refused") {
		t.Errorf("no log line for the refusals:\n%s", srv.Stderr())
	}
	before := authAttempts(t, srv)
	if code, body, _ := propfind(srv, pass, "-H", "X-Forwarded-Proto: https", "-H", "X-Forwarded-For: 203.0.113.9"); code != 207 {
		t.Fatalf("through the trusted balancer: %d %s", code, body)
	}
	if n := authAttempts(t, srv) - before; n != 1 {
		t.Fatalf("through the trusted balancer: %v attempts", n)
	}
	srv.Stop(t)

	srv = in.StartServer(t, "--plaintext-auth", "loopback")
	if code, body, _ := propfind(srv, pass); code != 207 || !strings.Contains(body, "/dav/principals/alice@example.com/") {
		t.Fatalf("loopback: %d %s", code, body)
	}
}
