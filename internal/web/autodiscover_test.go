package web

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// outlookRequest is the request Outlook sends (its bytes, with the address
// in between).
func outlookRequest(email, schema string) string {
	return `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">` +
		`<Request><EMailAddress>` + email + `</EMailAddress><AcceptableResponseSchema>` + schema + `</AcceptableResponseSchema></Request></Autodiscover>`
}

type autodiscoverResponse struct {
	XMLName  xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response struct {
		XMLName xml.Name
		User    struct{ EMailAddress string }
		Account struct {
			AccountType, Action string
			Protocol            []struct {
				Type, Server, LoginName, SSL, Encryption, AuthRequired string
				Port                                                   int
			}
		}
		Error *struct {
			ErrorCode, Message string
		}
	}
}

func (c *client) autodiscover(path, method, body string) (resp, autodiscoverResponse) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.e.ts.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "text/xml")
	r := c.do(req)
	var out autodiscoverResponse
	if err := xml.Unmarshal(r.body, &out); err != nil {
		c.t.Fatalf("%s %s: %v\n%s", method, path, err, r.body)
	}
	return r, out
}

// TestAutodiscover: Outlook's request gets the IMAP, POP3 and SMTP settings
// of the address, implicit TLS first, in the schema's namespaces; anything
// else gets the schema's errors, never a page or a 500.
func TestAutodiscover(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	for _, path := range []string{"/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"} {
		r, a := c.autodiscover(path, "POST", outlookRequest("nobody.here@old.example", autodiscoverOutlookNS))
		wantStatus(t, r, 200)
		if ct := r.Header.Get("Content-Type"); ct != "text/xml; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if a.Response.XMLName.Space != autodiscoverOutlookNS || a.Response.Error != nil ||
			a.Response.User.EMailAddress != "nobody.here@old.example" ||
			a.Response.Account.AccountType != "email" || a.Response.Account.Action != "settings" {
			t.Fatalf("%s: %+v\n%s", path, a, r.body)
		}
		got := map[string]string{}
		for _, p := range a.Response.Account.Protocol {
			if p.Server != "mail.example.com" || p.LoginName != "nobody.here@old.example" || p.SSL != "on" || p.AuthRequired != "on" {
				t.Errorf("protocol %+v", p)
			}
			got[p.Type] = p.Encryption + " " + strconv.Itoa(p.Port)
		}
		want := map[string]string{"IMAP": "SSL 993", "POP3": "SSL 995", "SMTP": "SSL 465"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %q, want %q", k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("protocols %v", got)
		}
	}

	for _, tc := range []struct {
		name, method, body, code string
	}{
		{"GET", "GET", "", "600"},
		{"not XML", "POST", "hello", "600"},
		{"no address", "POST", outlookRequest("", autodiscoverOutlookNS), "600"},
		{"markup in the address", "POST", outlookRequest("a&lt;b&gt;@old.example", autodiscoverOutlookNS), "600"},
		{"ActiveSync", "POST", outlookRequest("bob@old.example", "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"), "601"},
		{"too large", "POST", outlookRequest(strings.Repeat("a", 70<<10)+"@old.example", autodiscoverOutlookNS), "600"},
	} {
		r, a := c.autodiscover("/autodiscover/autodiscover.xml", tc.method, tc.body)
		wantStatus(t, r, 200)
		if a.Response.Error == nil || a.Response.Error.ErrorCode != tc.code || len(a.Response.Account.Protocol) != 0 {
			t.Errorf("%s: %s", tc.name, r.body)
		}
	}
}

// TestAutodiscoverStartTLS: with only STARTTLS listeners the schema's "TLS".
func TestAutodiscoverStartTLS(t *testing.T) {
	e := newEnv(t, true)
	e.srv.cfg.Settings = ServerSettings{Host: "mail.example.com", IMAPPort: 143, SubmissionPort: 587, WebPort: 443, WebTLS: true}
	_, a := e.client().autodiscover("/autodiscover/autodiscover.xml", "POST", outlookRequest("bob@old.example", ""))
	var got []string
	for _, p := range a.Response.Account.Protocol {
		got = append(got, p.Type+" "+p.Encryption+" "+strconv.Itoa(p.Port))
	}
	if strings.Join(got, ", ") != "IMAP TLS 143, SMTP TLS 587" {
		t.Errorf("protocols %v", got)
	}
}
