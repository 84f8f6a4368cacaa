package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// davMember provisions alice@example.com (an enforced domain) with an app
// password through the CLI and returns the password and its ID.
func davMember(t *testing.T, in *Instance) (password, id string) {
	t.Helper()
	in.MustRun(t, "domain", "add", "example.com")
	if r := in.RunStdin(t, davMainPassword+"\n", "user", "add", "alice@example.com", "--name", "Alice", "--password-stdin"); r.Code != 0 {
		t.Fatalf("user add: %s", r)
	}
	var created struct{ ID, Password string }
	in.RunJSON(t, &created, "apppass", "create", "alice@example.com", "--name", "DAV clients")
	if len(created.Password) != 20 || created.ID == "" {
		t.Fatalf("apppass create: %+v", created)
	}
	return created.Password, created.ID
}

const davMainPassword = "a long main password 4 alice"

// davDo sends one request with Basic credentials and returns status, ETag and body.
func davDo(t *testing.T, method, url, user, pass, body string, hdr ...string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("ETag"), string(b)
}

func davEvent(uid, summary string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//postern e2e//EN\r\nBEGIN:VEVENT\r\nUID:" + uid +
		"\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300301T100000Z\r\nDTEND:20300301T110000Z\r\nSUMMARY:" + summary +
		"\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
}

func davCard(uid, fn string) string {
	return "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + uid + "\r\nFN:" + fn + "\r\nN:" + fn + ";;;;\r\nEMAIL:" + uid + "@example.org\r\nEND:VCARD\r\n"
}

// TestDAVClients drives the real server with clients nobody here wrote:
// python3-caldav, vdirsyncer and curl.
func TestDAVClients(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		t.Parallel()
		pass, _ := davMember(t, in)
		srv := in.StartServer(t)
		t.Run("python3-caldav", func(t *testing.T) { davPythonCaldav(t, srv, pass) })
		t.Run("vdirsyncer", func(t *testing.T) { davVdirsyncer(t, srv, pass) })
		t.Run("curl", func(t *testing.T) { davCurl(t, srv, pass) })
	})
}

const caldavScript = `
import sys, datetime, caldav
url, user, pw = sys.argv[1:4]
client = caldav.DAVClient(url=url, username=user, password=pw)
principal = client.principal()
print("principal", principal.url)
cal = principal.make_calendar(name="Python Calendar", cal_id="python")
print("created", cal.url)
print("calendars", len(principal.calendars()))
ev = cal.save_event("""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//e2e//EN
BEGIN:VEVENT
UID:march-event
DTSTAMP:20300101T000000Z
DTSTART:20300301T100000Z
DTEND:20300301T110000Z
SUMMARY:March meeting
END:VEVENT
END:VCALENDAR
""")
cal.save_event(dtstart=datetime.datetime(2030, 4, 1, 10, tzinfo=datetime.timezone.utc),
               dtend=datetime.datetime(2030, 4, 1, 11, tzinfo=datetime.timezone.utc), summary="April meeting")
cal.save_event("""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//e2e//EN
BEGIN:VEVENT
UID:weekly
DTSTAMP:20300101T000000Z
DTSTART:20300102T090000Z
DTEND:20300102T093000Z
RRULE:FREQ=WEEKLY
SUMMARY:Weekly standup
END:VEVENT
END:VCALENDAR
""")
def summaries(found):
    out = []
    for e in found:
        e.load()
        out.append(str(e.vobject_instance.vevent.summary.value))
    return sorted(out)
march = cal.date_search(start=datetime.datetime(2030, 3, 1, tzinfo=datetime.timezone.utc),
                        end=datetime.datetime(2030, 3, 2, tzinfo=datetime.timezone.utc), expand=False)
print("march", summaries(march))
spring = cal.date_search(start=datetime.datetime(2030, 3, 1, 12, tzinfo=datetime.timezone.utc),
                         end=datetime.datetime(2030, 4, 30, tzinfo=datetime.timezone.utc), expand=False)
print("spring", summaries(spring))
ev.delete()
print("after delete", sorted(summaries(cal.events())))
cal.delete()
print("calendars after delete", len(principal.calendars()))
`

func davPythonCaldav(t *testing.T, srv *Server, pass string) {
	dir := t.TempDir()
	script := filepath.Join(dir, "caldav_e2e.py")
	if err := os.WriteFile(script, []byte(caldavScript), 0o600); err != nil {
		t.Fatal(err)
	}
	out := runTool(t, nil, "", "/usr/bin/python3", script, srv.URL("/dav/"), "alice@example.com", pass)
	for _, want := range []string{
		"principal " + srv.URL("/dav/principals/alice@example.com/"),
		"calendars 2",
		// 1 March 2030 is a Friday: the Wednesday standup is not on it.
		"march ['March meeting']",
		// But it recurs in spring; the March event ends before the range starts.
		"spring ['April meeting', 'Weekly standup']",
		"after delete ['April meeting', 'Weekly standup']",
		"calendars after delete 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("python3-caldav output lacks %q:\n%s", want, out)
		}
	}
}

// runTool runs an external client and fails the test when it fails.
func runTool(t *testing.T, env []string, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func davVdirsyncer(t *testing.T, srv *Server, pass string) {
	dir := t.TempDir()
	calDir, cardDir := filepath.Join(dir, "calendars"), filepath.Join(dir, "contacts")
	config := fmt.Sprintf(`[general]
status_path = %q

[pair cal]
a = "cal_local"
b = "cal_remote"
collections = ["default"]

[storage cal_local]
type = "filesystem"
path = %q
fileext = ".ics"

[storage cal_remote]
type = "caldav"
url = %q
username = "alice@example.com"
password = %q

[pair card]
a = "card_local"
b = "card_remote"
collections = ["default"]

[storage card_local]
type = "filesystem"
path = %q
fileext = ".vcf"

[storage card_remote]
type = "carddav"
url = %q
username = "alice@example.com"
password = %q
`, filepath.Join(dir, "status")+"/", calDir+"/", srv.URL("/dav/"), pass, cardDir+"/", srv.URL("/dav/"), pass)
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"VDIRSYNCER_CONFIG=" + cfg}
	vdir := func(args ...string) string {
		t.Helper()
		return runTool(t, env, strings.Repeat("y\n", 10), "vdirsyncer", args...)
	}
	cal := srv.URL("/dav/calendars/alice@example.com/default/")
	book := srv.URL("/dav/addressbooks/alice@example.com/default/")
	user := "alice@example.com"

	// The server starts with one event and one contact.
	if code, _, body := davDo(t, "PUT", cal+"server-event.ics", user, pass, davEvent("server-event", "From the server"), "Content-Type", "text/calendar"); code != 201 {
		t.Fatalf("PUT event: %d %s", code, body)
	}
	if code, _, body := davDo(t, "PUT", book+"server-card.vcf", user, pass, davCard("server-card", "Server Person"), "Content-Type", "text/vcard"); code != 201 {
		t.Fatalf("PUT card: %d %s", code, body)
	}
	vdir("discover")
	vdir("sync")
	localEvent := readOne(t, filepath.Join(calDir, "default"), "server-event")
	localCard := readOne(t, filepath.Join(cardDir, "default"), "server-card")
	if !strings.Contains(localEvent.data, "From the server") || !strings.Contains(localCard.data, "Server Person") {
		t.Fatalf("first sync: %q %q", localEvent.data, localCard.data)
	}

	// A change on each side: a new local event and an edited local card; the
	// server's event edited (with If-Match, as a client would).
	if err := os.WriteFile(filepath.Join(calDir, "default", "local-event.ics"), []byte(davEvent("local-event", "From the laptop")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(localCard.path, []byte(davCard("server-card", "Renamed Locally")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, etag, _ := davDo(t, "GET", cal+"server-event.ics", user, pass, "")
	if code, _, body := davDo(t, "PUT", cal+"server-event.ics", user, pass, davEvent("server-event", "Edited on the server"), "If-Match", etag); code != 204 {
		t.Fatalf("PUT edit: %d %s", code, body)
	}
	vdir("sync")

	// Both directions arrived.
	if ev := readOne(t, filepath.Join(calDir, "default"), "server-event"); !strings.Contains(ev.data, "Edited on the server") {
		t.Errorf("server edit not synced down: %s", ev.data)
	}
	code, _, body := davDo(t, "REPORT", cal, user, pass, `<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/></C:comp-filter></C:filter></C:calendar-query>`, "Depth", "1")
	if code != 207 || !strings.Contains(body, "From the laptop") || !strings.Contains(body, "Edited on the server") {
		t.Errorf("calendar after the second sync: %d %s", code, body)
	}
	code, _, body = davDo(t, "REPORT", book, user, pass, `<CR:addressbook-query xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:prop><CR:address-data/></D:prop></CR:addressbook-query>`, "Depth", "1")
	if code != 207 || !strings.Contains(body, "Renamed Locally") || strings.Contains(body, "Server Person") {
		t.Errorf("address book after the second sync: %d %s", code, body)
	}
	// A third sync has nothing left to do and changes nothing.
	out := vdir("sync")
	if strings.Contains(out, "Copying") || strings.Contains(out, "Deleting") || strings.Contains(out, "error") {
		t.Errorf("third sync still moved items:\n%s", out)
	}
}

type localItem struct{ path, data string }

// readOne returns the one file of dir whose content has the UID uid.
func readOne(t *testing.T, dir, uid string) localItem {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), "UID:"+uid) {
			return localItem{p, string(b)}
		}
	}
	t.Fatalf("no item with UID %s in %s (%d files)", uid, dir, len(entries))
	return localItem{}
}

// curl runs curl with the credentials in a config read from stdin, so the
// app password is never in the process arguments; it returns the body and
// the status code (written last by -w).
func curl(t *testing.T, user, pass string, args ...string) (string, int) {
	t.Helper()
	cfg := fmt.Sprintf("user = %q\n", user+":"+pass)
	out := runTool(t, nil, cfg, "curl", append([]string{"-sS", "-K", "-", "-w", "\n%{http_code}"}, args...)...)
	i := strings.LastIndex(out, "\n")
	var code int
	fmt.Sscanf(out[i+1:], "%d", &code)
	return out[:i], code
}

func davCurl(t *testing.T, srv *Server, pass string) {
	user := "alice@example.com"
	body, code := curl(t, user, pass, "-X", "PROPFIND", "-H", "Depth: 0", "-H", "Content-Type: application/xml",
		"--data", `<D:propfind xmlns:D="DAV:"><D:prop><D:current-user-principal/></D:prop></D:propfind>`, srv.URL("/dav/"))
	if code != 207 || !strings.Contains(body, "/dav/principals/alice@example.com/") {
		t.Fatalf("PROPFIND: %d %s", code, body)
	}
	// The well-known redirect.
	out := runTool(t, nil, "", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", srv.URL("/.well-known/caldav"))
	if !strings.HasPrefix(out, "301 ") || !strings.HasSuffix(out, "/dav/") {
		t.Errorf("well-known: %q", out)
	}

	// sync-collection: an initial token, a change, the change and a new token.
	cal := srv.URL("/dav/calendars/alice@example.com/curl/")
	if _, code := curl(t, user, pass, "-X", "MKCALENDAR", cal); code != 201 {
		t.Fatalf("MKCALENDAR: %d", code)
	}
	sync := func(token string) (string, string) {
		t.Helper()
		body, code := curl(t, user, pass, "-X", "REPORT", "-H", "Content-Type: application/xml", "--data",
			`<D:sync-collection xmlns:D="DAV:"><D:sync-token>`+token+`</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`, cal)
		if code != 207 {
			t.Fatalf("sync-collection: %d %s", code, body)
		}
		m := regexp.MustCompile(`<D:sync-token>([^<]+)</D:sync-token>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no sync-token: %s", body)
		}
		return body, m[1]
	}
	_, token := sync("")
	put := func(body string, hdr ...string) (int, string) {
		t.Helper()
		args := []string{"-X", "PUT", "-H", "Content-Type: text/calendar", "--data-binary", "@-", "-D", "-", cal + "meeting.ics"}
		for _, h := range hdr {
			args = append([]string{"-H", h}, args...)
		}
		cfg := fmt.Sprintf("user = %q\n", user+":"+pass)
		// The event goes in through a file: stdin carries the config.
		f := filepath.Join(t.TempDir(), "event.ics")
		os.WriteFile(f, []byte(body), 0o600)
		for i, a := range args {
			if a == "@-" {
				args[i] = "@" + f
			}
		}
		out := runTool(t, nil, cfg, "curl", append([]string{"-sS", "-K", "-", "-o", "/dev/null"}, args...)...)
		status := regexp.MustCompile(`HTTP/1.1 (\d+)`).FindStringSubmatch(out)
		etag := regexp.MustCompile(`(?i)etag: (\S+)`).FindStringSubmatch(out)
		if status == nil {
			t.Fatalf("PUT: %s", out)
		}
		var code int
		fmt.Sscanf(status[1], "%d", &code)
		if etag == nil {
			return code, ""
		}
		return code, etag[1]
	}
	code, etag1 := put(davEvent("meeting", "Version 1"), "If-None-Match: *")
	if code != 201 || etag1 == "" {
		t.Fatalf("first PUT: %d %q", code, etag1)
	}
	body, token2 := sync(token)
	if token2 == token || !strings.Contains(body, "meeting.ics") || !strings.Contains(body, "getetag") {
		t.Fatalf("sync after PUT: %s", body)
	}
	code, etag2 := put(davEvent("meeting", "Version 2"), "If-Match: "+etag1)
	if code != 204 || etag2 == etag1 {
		t.Fatalf("conditional PUT: %d %q", code, etag2)
	}
	// A second client still holding the first ETag is refused.
	if code, _ := put(davEvent("meeting", "Lost update"), "If-Match: "+etag1); code != 412 {
		t.Fatalf("stale If-Match: %d, want 412", code)
	}
	got, _ := curl(t, user, pass, cal+"meeting.ics")
	if !strings.Contains(got, "Version 2") {
		t.Fatalf("after the refused PUT: %s", got)
	}
}

// TestDAVPolicy is the policy matrix over CalDAV on an enforced domain: the
// main password is refused with the ordinary 401, the app password works,
// and deleting it with the CLI fails the very next request.
func TestDAVPolicy(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	pass, id := davMember(t, in)
	srv := in.StartServer(t)
	url := srv.URL("/dav/calendars/alice@example.com/")
	user := "alice@example.com"
	propfind := func(secret string) (int, string) {
		code, _, body := davDo(t, "PROPFIND", url, user, secret, "", "Depth", "0")
		return code, body
	}
	mainCode, mainBody := propfind(davMainPassword)
	wrongCode, wrongBody := propfind("not the password at all")
	if mainCode != 401 || wrongCode != 401 || mainBody != wrongBody {
		t.Fatalf("main password: %d %q; wrong password: %d %q", mainCode, mainBody, wrongCode, wrongBody)
	}
	if code, body := propfind(pass); code != 207 {
		t.Fatalf("app password: %d %s", code, body)
	}
	// Last used records the protocol (written asynchronously).
	deadline := time.Now().Add(20 * time.Second)
	for {
		var list []struct {
			ID               string `json:"id"`
			LastUsedProtocol string `json:"last_used_protocol"`
		}
		in.RunJSON(t, &list, "apppass", "list", user)
		if len(list) == 1 && list[0].LastUsedProtocol == "caldav" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last used protocol not caldav: %+v", list)
		}
		time.Sleep(200 * time.Millisecond)
	}
	in.MustRun(t, "apppass", "delete", user, id)
	if code, _ := propfind(pass); code != 401 {
		t.Fatalf("deleted app password: %d, want 401", code)
	}
}
