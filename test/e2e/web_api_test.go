package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

// webClient is a cookie-jar JSON client of the binary's member API, as curl
// -c/-b with Content-Type: application/json would be.
type webClient struct {
	t    *testing.T
	srv  *Server
	http *http.Client
}

func newWebClient(t *testing.T, srv *Server) *webClient {
	jar, _ := cookiejar.New(nil)
	return &webClient{t: t, srv: srv, http: &http.Client{Jar: jar}}
}

func (c *webClient) do(method, path string, body any, hdr ...string) (int, []byte) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.srv.URL(path), r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// TestWebAPISessionsAndMessages drives the binary's API on both engines
// (migration 0007 included): the sessions list with public ids, signing one
// out, and the notification of a CLI-made app password in Japanese and
// English.
func TestWebAPISessionsAndMessages(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		in.MustRun(t, "domain", "add", "legacy.example", "--created", "2020-04-01")
		const pw = "a long main password"
		if r := in.RunStdin(t, pw+"\n", "user", "add", "kumi@legacy.example", "--name", "Kumi", "--password-stdin"); r.Code != 0 {
			t.Fatalf("user add: %s", r)
		}
		in.MustRun(t, "user", "set", "kumi@legacy.example", "--use-app-passwords", "on")
		in.MustRun(t, "apppass", "create", "kumi@legacy.example", "--name", `<b>Mail</b>`)
		srv := in.StartServer(t)

		a, b := newWebClient(t, srv), newWebClient(t, srv)
		for _, c := range []*webClient{a, b} {
			if code, body := c.do("POST", "/api/v1/session", map[string]string{"email": "kumi@legacy.example", "password": pw}); code != 200 {
				t.Fatalf("sign in: %d %s", code, body)
			}
		}
		var list []struct {
			ID      string
			Current bool
			Browser string
		}
		code, body := a.do("GET", "/api/v1/me/sessions", nil)
		if json.Unmarshal(body, &list); code != 200 || len(list) != 2 || !list[0].Current || list[1].Current || list[0].Browser != "Go" {
			t.Fatalf("sessions: %d %s", code, body)
		}
		if code, _ := a.do("DELETE", "/api/v1/me/sessions/"+list[1].ID, nil); code != 204 {
			t.Fatalf("sign out b: %d", code)
		}
		if code, _ := b.do("GET", "/api/v1/me", nil); code != 401 {
			t.Fatalf("b after being signed out: %d", code)
		}

		var msgs []struct{ Kind, Lang, Subject, Body string }
		_, body = a.do("GET", "/api/v1/me/messages", nil, "Accept-Language", "ja,en;q=0.5")
		if json.Unmarshal(body, &msgs); len(msgs) != 2 || msgs[0].Kind != "apppass.created" || msgs[0].Lang != "ja" ||
			msgs[0].Subject != "サードパーティアプリ用パスワードが作成されました: <b>Mail</b>" ||
			!strings.Contains(msgs[0].Body, "管理者が postern コマンドで行いました。") || msgs[1].Kind != "setting.changed" {
			t.Fatalf("ja messages: %s", body)
		}
		_, body = a.do("GET", "/api/v1/me/messages", nil)
		if json.Unmarshal(body, &msgs); msgs[0].Lang != "en" || !strings.HasPrefix(msgs[0].Subject, "A third-party app password was created: ") {
			t.Fatalf("en messages: %s", body)
		}
	})
}
