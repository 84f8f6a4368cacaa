package davserver

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/postern/postern/internal/account"
)

type resType int

const (
	resRoot          resType = iota // /dav/ and the containers principals/, calendars/, addressbooks/
	resPrincipal                    // /dav/principals/<email>/
	resHome                         // /dav/calendars/<email>/, /dav/addressbooks/<email>/
	resCollection                   // a calendar or an address book
	resObject                       // an existing object
	resNewCollection                // a free collection name under a home (MKCALENDAR, MKCOL)
	resNewObject                    // a free object name in a collection (PUT)
)

// resource is what a request path names, always within the member's own tree.
type resource struct {
	typ    resType
	href   string // canonical path, "/" at the end for collections
	member account.Member
	kind   Kind       // homes, collections, objects
	coll   Collection // resCollection, resObject, resNewObject
	name   string     // the last segment: new collection, object
	obj    *Object    // resObject, with Data
}

// homeSegment is the path segment of each kind's home.
var homeSegment = map[Kind]string{KindCalendar: "calendars", KindAddressBook: "addressbooks"}

func principalHref(m account.Member) string {
	return Prefix + "principals/" + escapeSegment(m.Email) + "/"
}

func homeHref(m account.Member, k Kind) string {
	return Prefix + homeSegment[k] + "/" + escapeSegment(m.Email) + "/"
}

func collectionHref(m account.Member, c Collection) string {
	return homeHref(m, c.Kind) + escapeSegment(c.Name) + "/"
}

func objectHref(m account.Member, c Collection, name string) string {
	return collectionHref(m, c) + escapeSegment(name)
}

// escapeSegment percent-encodes a path segment; '@' stays readable.
func escapeSegment(s string) string { return url.PathEscape(s) }

// validSegment reports whether s may name a collection or an object: 1–255
// bytes of printable UTF-8, no "/" and not "." or "..".
func validSegment(s string) bool {
	if s == "" || len(s) > 255 || s == "." || s == ".." || !utf8.ValidString(s) || strings.ContainsRune(s, '/') {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// resolve maps a request path to a resource of m. Paths of other members,
// and anything that does not exist where existence is needed, are 404: a
// member cannot even learn whether another member's collection exists.
func (h *handler) resolve(ctx context.Context, m account.Member, path string) (*resource, error) {
	rest := strings.TrimPrefix(path, strings.TrimSuffix(Prefix, "/"))
	rest = strings.Trim(rest, "/")
	var segs []string
	if rest != "" {
		segs = strings.Split(rest, "/")
	}
	for _, s := range segs {
		if !validSegment(s) {
			return nil, account.ErrNotFound
		}
	}
	res := &resource{member: m}
	if len(segs) == 0 {
		res.typ, res.href = resRoot, Prefix
		return res, nil
	}
	var kind Kind
	switch segs[0] {
	case "principals":
	case "calendars":
		kind = KindCalendar
	case "addressbooks":
		kind = KindAddressBook
	default:
		return nil, account.ErrNotFound
	}
	if len(segs) == 1 {
		res.typ, res.href = resRoot, Prefix+segs[0]+"/"
		return res, nil
	}
	if !strings.EqualFold(segs[1], m.Email) {
		return nil, account.ErrNotFound
	}
	if kind == "" {
		if len(segs) > 2 {
			return nil, account.ErrNotFound
		}
		res.typ, res.href = resPrincipal, principalHref(m)
		return res, nil
	}
	res.kind = kind
	if err := h.store.EnsureDefaults(ctx, m.ID, defaults); err != nil {
		return nil, err
	}
	switch len(segs) {
	case 2:
		res.typ, res.href = resHome, homeHref(m, kind)
		return res, nil
	case 3, 4:
	default:
		return nil, account.ErrNotFound
	}
	c, err := h.store.Collection(ctx, m.ID, kind, segs[2])
	if account.ErrorCode(err) == account.ENOTFOUND && len(segs) == 3 {
		res.typ, res.name, res.href = resNewCollection, segs[2], homeHref(m, kind)+escapeSegment(segs[2])+"/"
		return res, nil
	}
	if account.ErrorCode(err) == account.ENOTFOUND {
		// RFC 4918 §9.7.1: a PUT whose parent collection is missing is 409.
		return nil, errorf(http.StatusConflict, "The collection %q does not exist.", segs[2])
	}
	if err != nil {
		return nil, err
	}
	res.coll = c
	if len(segs) == 3 {
		res.typ, res.href = resCollection, collectionHref(m, c)
		return res, nil
	}
	res.name, res.href = segs[3], objectHref(m, c, segs[3])
	objs, err := h.store.ObjectsByName(ctx, c.ID, []string{segs[3]})
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		res.typ = resNewObject
		return res, nil
	}
	res.typ, res.obj = resObject, &objs[0]
	return res, nil
}

// resolveHref resolves a DAV:href of a multiget body (a path or an absolute
// URL, percent-encoded) to an object of the collection c.
func (h *handler) resolveHref(m account.Member, c Collection, href string) (name string, ok bool) {
	u, err := url.Parse(strings.TrimSpace(href))
	if err != nil {
		return "", false
	}
	dir := collectionHref(m, c)
	dirPath, _ := url.PathUnescape(dir)
	p := u.Path
	switch {
	case strings.HasPrefix(p, dirPath):
		name = p[len(dirPath):]
	case strings.HasPrefix(p, dir):
		name = p[len(dir):]
	default:
		return "", false
	}
	return name, validSegment(name)
}
