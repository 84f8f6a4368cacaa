// Package davserver serves each member's calendars (CalDAV, RFC 4791) and
// address books (CardDAV, RFC 6352) under /dav/, with discovery at
// /.well-known/caldav and /.well-known/carddav (RFC 6764).
//
// emersion/go-webdav's handlers lack what real clients need (MKCALENDAR,
// PROPPATCH, sync-collection, getctag, If-Match on every write, precondition
// error bodies) and keep their multistatus machinery in an internal package,
// so the WebDAV layer is written here; iCalendar and vCard are parsed with
// emersion/go-ical and go-vcard, recurrences expanded with rrule-go.
//
// URL layout (one member per principal; <email> is the login address):
//
//	/dav/principals/<email>/                  principal (RFC 5397, RFC 3744)
//	/dav/calendars/<email>/                   calendar-home-set
//	/dav/calendars/<email>/<calendar>/        calendar collection
//	/dav/calendars/<email>/<calendar>/<name>  calendar object resource
//	/dav/addressbooks/<email>/...             the same for address books
//
// Every request authenticates with HTTP Basic through the auth gateway (no
// credential cache: a deleted app password fails on the next request), and a
// member only ever sees paths under their own address: anything else is 404.
package davserver

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/tlsconf"
)

// DefaultMaxObjectSize is the largest calendar or address object accepted.
const DefaultMaxObjectSize = 1 << 20

// Config configures New.
type Config struct {
	Auth  auth.Authenticator
	Store Store
	Log   *slog.Logger
	// MaxObjectSize limits one object (CALDAV:max-resource-size); 0 is
	// DefaultMaxObjectSize.
	MaxObjectSize int64
	// Plaintext says where Basic credentials are taken without TLS (its
	// own, or a trusted load balancer's: tlsconf.WithForwardedTLS); "" is
	// tlsconf.PlaintextLoopback.
	Plaintext tlsconf.Plaintext
	// MaxInstances, MaxQueryInstances and MaxExpansionTime bound the
	// recurrence expansion of one object and of one request; 0 is
	// DefaultMaxInstances, DefaultMaxQueryInstances, DefaultMaxExpansionTime.
	MaxInstances      int
	MaxQueryInstances int
	MaxExpansionTime  time.Duration
}

// handler serves DAV requests.
type handler struct {
	auth    auth.Authenticator
	store   Store
	log     *slog.Logger
	maxSize int64

	plaintext tlsconf.Plaintext

	maxInstances, maxQueryInstances int
	maxExpansionTime                time.Duration
}

// New returns the handler of /dav/ and /.well-known/{caldav,carddav}; mount
// it on those paths of the web listener.
func New(cfg Config) http.Handler {
	h := &handler{auth: cfg.Auth, store: cfg.Store, log: cfg.Log, maxSize: cfg.MaxObjectSize, plaintext: cmp.Or(cfg.Plaintext, tlsconf.PlaintextLoopback)}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.maxSize <= 0 {
		h.maxSize = DefaultMaxObjectSize
	}
	h.maxInstances = cmp.Or(max(cfg.MaxInstances, 0), DefaultMaxInstances)
	h.maxQueryInstances = cmp.Or(max(cfg.MaxQueryInstances, 0), DefaultMaxQueryInstances)
	h.maxExpansionTime = cmp.Or(max(cfg.MaxExpansionTime, 0), DefaultMaxExpansionTime)
	return h
}

// Prefix is the path under which every DAV resource lives.
const Prefix = "/dav/"

// defaults are created for every member on first use.
var defaults = []Collection{
	{Kind: KindCalendar, Name: "default", DisplayName: "Calendar", Components: "VEVENT,VTODO,VJOURNAL"},
	{Kind: KindAddressBook, Name: "default", DisplayName: "Contacts"},
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Discovery (RFC 6764 §5): the well-known URIs redirect to the context
	// path, where an authenticated PROPFIND finds current-user-principal.
	// No authentication is needed to learn where the service lives.
	if r.URL.Path == "/.well-known/caldav" || r.URL.Path == "/.well-known/carddav" {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	if r.URL.Path != strings.TrimSuffix(Prefix, "/") && !strings.HasPrefix(r.URL.Path, Prefix) {
		http.NotFound(w, r)
		return
	}
	proto := auth.CalDAV
	if strings.HasPrefix(r.URL.Path, Prefix+"addressbooks/") {
		proto = auth.CardDAV
	}
	// A long request (a large REPORT) ends when its credential is revoked.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	m, done, ok := h.authenticate(w, r, proto, cancel)
	if !ok {
		return
	}
	defer done()
	h.serve(w, r.WithContext(ctx), m)
}

// dispatch runs the method on the resource of the request path.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, m account.Member) {
	res, err := h.resolve(r.Context(), m, r.URL.Path)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	switch r.Method {
	case http.MethodOptions:
		h.options(w, res)
	case "PROPFIND":
		err = h.propfind(w, r, res)
	case "PROPPATCH":
		err = h.proppatch(w, r, res)
	case "REPORT":
		err = h.report(w, r, res)
	case "MKCALENDAR", "MKCOL":
		err = h.mkcol(w, r, res)
	case http.MethodGet, http.MethodHead:
		err = h.get(w, r, res)
	case http.MethodPut:
		err = h.put(w, r, res)
	case http.MethodDelete:
		err = h.delete(w, r, res)
	default:
		w.Header().Set("Allow", allow(res))
		err = errorf(http.StatusMethodNotAllowed, "The method %s is not supported here.", r.Method)
	}
	if err != nil {
		h.fail(w, r, err)
	}
}

// options answers OPTIONS (RFC 4918 §10.1, RFC 4791 §5.1, RFC 6352 §6.1,
// RFC 5689 §3.1 extended-mkcol).
func (h *handler) options(w http.ResponseWriter, res *resource) {
	w.Header().Set("DAV", "1, 3, calendar-access, addressbook, extended-mkcol")
	w.Header().Set("Allow", allow(res))
	w.WriteHeader(http.StatusOK)
}

func allow(res *resource) string {
	switch res.typ {
	case resHome:
		return "OPTIONS, PROPFIND, PROPPATCH, REPORT, MKCOL, MKCALENDAR"
	case resCollection:
		return "OPTIONS, PROPFIND, PROPPATCH, REPORT, DELETE"
	case resObject:
		return "OPTIONS, PROPFIND, PROPPATCH, GET, HEAD, PUT, DELETE"
	case resNewObject:
		return "OPTIONS, PUT"
	case resNewCollection:
		return "OPTIONS, MKCOL, MKCALENDAR"
	}
	return "OPTIONS, PROPFIND, REPORT"
}
