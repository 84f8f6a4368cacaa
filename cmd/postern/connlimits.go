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
// programs keep five IMAP connections each, plus 50 phones reconnecting at
// once after the Wi-Fi came back. 20,000 per server is twice the 10,000
// IDLE sessions the benchmarks hold (docs/benchmarks.md), about 470 MiB of
// IMAP sessions at 24 KiB each: a bound on memory and descriptors, not a
// size any deployment is expected to reach.
const (
	defaultMaxConnsPerIP = 200
	defaultMaxConns      = 20000
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

// ioRate bounds how slowly the web listener lets a client send a request
// body or take a response: grace, then at least rate bytes a second. A
// request body of n bytes has grace + n/rate from the request's start; each
// write of n response bytes has grace + n/rate from when it begins. A client
// trickling a byte now and then, or not reading at all, is cut when the
// grace is over; a large CalDAV PUT, vCard import or REPORT over a poor
// mobile link goes through. A fixed ReadTimeout or WriteTimeout could not
// tell the two apart.
type ioRate struct {
	grace time.Duration
	rate  int64 // bytes a second
}

// webRate is the web listener's: 30 s, then 1 KiB/s (GPRS carries 2 to 10
// KiB/s). The largest body the web takes (a 1 MiB DAV object) may take
// 17 minutes, and a connection held that long is one of its address's
// --max-connections-per-ip.
var webRate = ioRate{grace: 30 * time.Second, rate: 1 << 10}

func (br ioRate) allow(n int64) time.Duration {
	return br.grace + time.Duration(n)*time.Second/time.Duration(br.rate)
}

// guard runs h with its request body and response under br. The request's
// headers are bounded by the server's ReadHeaderTimeout.
func (br ioRate) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Body != nil && r.Body != http.NoBody {
			r = r.WithContext(r.Context()) // a shallow copy: the server's request keeps its body
			r.Body = &rateBody{ReadCloser: r.Body, rc: rc, rate: br, start: time.Now()}
		}
		// The handler's writes set their own deadlines; these two cover
		// what the server writes without one: "100 Continue" when the body
		// is read, and what is still buffered when the handler returns
		// (net/http clears the deadline after each request).
		rc.SetWriteDeadline(time.Now().Add(br.grace))
		defer func() { rc.SetWriteDeadline(time.Now().Add(br.grace)) }()
		h.ServeHTTP(&rateWriter{ResponseWriter: w, rc: rc, rate: br}, r)
	})
}

// rateBody is a request body read under ioRate.
type rateBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	rate  ioRate
	start time.Time
	n     int64 // bytes read
}

func (b *rateBody) Read(p []byte) (int, error) {
	// The deadline counts only what has arrived: a client gains time by
	// sending, never by announcing. It is set before each read, never
	// after: once the body is done, net/http clears the deadline and reads
	// on in the background to notice the client going away, and a deadline
	// left behind would cancel the request while the handler still works.
	b.rc.SetReadDeadline(b.start.Add(b.rate.allow(b.n)))
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// rateWriter is a response written under ioRate: each write gets a
// deadline for its size. http.ResponseController reaches the server's
// writer through Unwrap (Flush, deadlines).
type rateWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	rate ioRate
}

func (w *rateWriter) Write(p []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.rate.allow(int64(len(p)))))
	return w.ResponseWriter.Write(p)
}

func (w *rateWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
