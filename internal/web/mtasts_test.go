package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

const testPolicy = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n"

// TestMTASTSPolicy: the policy is served as text/plain to mta-sts.DOMAIN of
// a local domain, whatever the case, port or final dot of the host; any
// other host, a domain not served here, or a server without a policy
// gets 404.
func TestMTASTSPolicy(t *testing.T) {
	e := newEnv(t, true)
	srv := New(Config{Service: e.svc, Sessions: e.db, Auth: e.gw, Log: e.srv.log, MTASTSPolicy: testPolicy})
	get := func(s *Server, host string) *http.Response {
		req := httptest.NewRequest("GET", "https://"+host+"/.well-known/mta-sts.txt", nil)
		req.Host = host
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		return w.Result()
	}
	for _, host := range []string{"mta-sts.old.example", "MTA-STS.New.Example", "mta-sts.new.example:443", "mta-sts.new.example."} {
		r := get(srv, host)
		body, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 || string(body) != testPolicy || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%s: %d %q %q", host, r.StatusCode, r.Header.Get("Content-Type"), body)
		}
	}
	for _, host := range []string{"mail.example.com", "mta-sts.elsewhere.example", "old.example", "mta-sts.", "www.mta-sts.old.example", "mta-sts.old.example.evil.test", "mta-sts.bad..name"} {
		if r := get(srv, host); r.StatusCode != 404 {
			t.Errorf("%s: %d", host, r.StatusCode)
		}
	}
	if r := get(e.srv, "mta-sts.old.example"); r.StatusCode != 404 {
		t.Errorf("without a policy: %d", r.StatusCode)
	}
}
