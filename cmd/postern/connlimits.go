package main

import (
	"errors"
	"flag"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/internal/netserver"
)

// What one client may hold open: connections per address and in total on
// each server (netserver.Limiter), and how slowly the web listener lets a
// request body arrive.

// Defaults of --max-connections-per-ip and --max-connections. 200 from one
// address fits an office behind one NAT address: 30 members whose mail
// programs keep five IMAP connections each, plus their phones reconnecting
// at once after the Wi-Fi came back. 10,000 per server is about 240 MiB of
// IMAP sessions in IDLE (24 KiB each, docs/benchmarks.md), well below the
// default descriptor limit of a service (systemd: 524,288).
const (
	defaultMaxConnsPerIP = 200
	defaultMaxConns      = 10000
)

type connLimitFlags struct {
	perIP, total string
}

func (f *connLimitFlags) register(a *app, fs *flag.FlagSet) {
	a.configVar(fs, &f.perIP, "max-connections-per-ip", strconv.Itoa(defaultMaxConnsPerIP),
		"open connections one client address (IPv4, or IPv6 /56) may hold on each of IMAP, POP3, SMTP submission and the web; 0: no limit")
	a.configVar(fs, &f.total, "max-connections", strconv.Itoa(defaultMaxConns),
		"open connections on each of IMAP, POP3, SMTP submission and the web, every address together; 0: no limit")
}

// setupConnLimits reads the flags into s.limits, which every listener's
// server applies on its own: IMAP's two listeners share one count, POP3's
// one, SMTP's one and the web its own, so that a flood of one protocol
// cannot lock members out of the others. It runs after setupScaleout.
func (s *server) setupConnLimits() error {
	f := &s.flags.connLimits
	perIP, err := parseCount(f.perIP)
	if err != nil {
		return usagef(serveCommand, "--max-connections-per-ip must be a number of connections, or 0, not %q", f.perIP)
	}
	total, err := parseCount(f.total)
	if err != nil {
		return usagef(serveCommand, "--max-connections must be a number of connections, or 0, not %q", f.total)
	}
	s.limits = netserver.Limits{PerAddr: perIP, Total: total}
	if trusted := s.flags.scaleout.trusted; len(trusted) > 0 {
		// A load balancer's own address is no client's: mail connections
		// through it carry the client's address (PROXY header) and keep the
		// balancer's only for its health checks; web connections are all
		// the balancer's, shared by its clients (their addresses come per
		// request, X-Forwarded-For), so capping them per address would cap
		// everyone behind it. The balancer caps per client; Total still holds.
		s.limits.Exempt = trusted.Contains
	}
	return nil
}

func parseCount(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, errors.New("not a count")
	}
	return n, nil
}

// webRefusal is the web listener's answer to a connection over a cap,
// written as the connection is accepted, before the request is read: a
// client reads it as the answer to its request. The close that follows may
// reach a client still sending as a reset instead.
var webRefusal = netserver.Refusal{
	PerAddr: webUnavailable("Too many connections from your address, try again later.\n"),
	Total:   webUnavailable("Too many connections, try again later.\n"),
}

func webUnavailable(body string) string {
	return "HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Retry-After: 10\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// bodyRate bounds how long a request body may take to arrive: grace, then
// at least rate bytes a second on average since the request began. A body
// of n bytes has grace + n/rate; a client trickling a byte now and then is
// cut when the grace is over, while a large CalDAV PUT or vCard import over
// a poor mobile link goes through.
type bodyRate struct {
	grace time.Duration
	rate  int64 // bytes a second
}

// webBodyRate is the web listener's: 30 s, then 1 KiB/s (GPRS sends 2 to 5
// KiB/s). The largest body the web takes (a 1 MiB DAV object) may take
// 17 minutes, and a connection held that long is one of its address's
// --max-connections-per-ip.
var webBodyRate = bodyRate{grace: 30 * time.Second, rate: 1 << 10}

// guard gives every request body of h a read deadline that moves with what
// has arrived. The headers are bounded by the server's ReadHeaderTimeout.
func (br bodyRate) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r = r.WithContext(r.Context()) // a shallow copy: the server's request keeps its body
			r.Body = &rateBody{ReadCloser: r.Body, rc: http.NewResponseController(w), rate: br, start: time.Now()}
		}
		h.ServeHTTP(w, r)
	})
}

// rateBody is a request body read under bodyRate.
type rateBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	rate  bodyRate
	start time.Time
	n     int64 // bytes read
}

func (b *rateBody) Read(p []byte) (int, error) {
	// The deadline counts only what has arrived: a client gains time by
	// sending, never by announcing. It is set before each read, never
	// after: once the body is done, net/http clears the deadline and reads
	// on in the background to notice the client going away, and a deadline
	// left behind would cancel the request while the handler still works.
	allowed := b.rate.grace + time.Duration(b.n)*time.Second/time.Duration(b.rate.rate)
	b.rc.SetReadDeadline(b.start.Add(allowed))
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
