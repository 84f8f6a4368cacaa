package davserver_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// BenchmarkPropfind measures authenticated PROPFIND requests per second over
// a loopback socket: Basic auth through the real gateway with an app
// password (HMAC, no argon2id) on every request, then a Depth: 1 PROPFIND of
// the calendar home, as a client polling for changes does.
func BenchmarkPropfind(b *testing.B) {
	for _, eng := range []struct {
		name string
		open func(testing.TB) *sqlstore.DB
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		b.Run(eng.name, func(b *testing.B) {
			e := newEnvOn(b, eng.open(b))
			url := e.srv.URL + "/dav/calendars/alice@example.com/"
			body := `<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><D:prop><D:displayname/><CS:getctag/><D:sync-token/></D:prop></D:propfind>`
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("PROPFIND", url, strings.NewReader(body))
					req.SetBasicAuth(e.alice.Email, e.alicePass)
					req.Header.Set("Depth", "1")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusMultiStatus {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
