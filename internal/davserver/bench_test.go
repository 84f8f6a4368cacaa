package davserver_test

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

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

// BenchmarkCalendarQuerySecondly measures a calendar-query over a member's
// event that recurs every second without end (RRULE:FREQ=SECONDLY): over 60
// days and a year from its start, where the first instance overlaps, and
// over a day a year after its start, which no instance within the expansion
// cap reaches (the query is refused). peak-heap-MiB is the largest growth
// of the heap in use during one request, sampled every millisecond.
func BenchmarkCalendarQuerySecondly(b *testing.B) {
	e := newEnv(b)
	e.want(e.as("PUT", cal+"secondly.ics", event("secondly", "20300101T000000Z", "20300101T000001Z", "RRULE:FREQ=SECONDLY\r\n")), http.StatusCreated)
	for _, tc := range []struct{ name, start, end string }{
		{"60days", "20300101T000000Z", "20300302T000000Z"},
		{"year", "20300101T000000Z", "20310101T000000Z"},
		{"dayAfterAYear", "20310101T000000Z", "20310102T000000Z"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			q := calQuery("VEVENT", tc.start, tc.end)
			var peak uint64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				stop := sampleHeap(&peak)
				r := e.as("REPORT", cal, q, "Depth", "1")
				stop()
				if r.StatusCode != http.StatusMultiStatus && r.StatusCode != http.StatusForbidden {
					b.Fatalf("status %d: %s", r.StatusCode, r.body)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

// sampleHeap records in *peak the largest growth of HeapInuse over its
// value at the call, until stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > base && m.HeapInuse-base > *peak {
				*peak = m.HeapInuse - base
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}
