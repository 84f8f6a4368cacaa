package davserver

import (
	"context"
	"encoding/xml"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Property names.
var (
	pResourceType     = name(nsDAV, "resourcetype")
	pDisplayName      = name(nsDAV, "displayname")
	pCurrentPrincipal = name(nsDAV, "current-user-principal")
	pPrincipalURL     = name(nsDAV, "principal-URL")
	pOwner            = name(nsDAV, "owner")
	pPrivileges       = name(nsDAV, "current-user-privilege-set")
	pSupportedReports = name(nsDAV, "supported-report-set")
	pSyncToken        = name(nsDAV, "sync-token")
	pETag             = name(nsDAV, "getetag")
	pContentType      = name(nsDAV, "getcontenttype")
	pContentLength    = name(nsDAV, "getcontentlength")
	pLastModified     = name(nsDAV, "getlastmodified")
	pCalendarHome     = name(nsCalDAV, "calendar-home-set")
	pCalendarUserAddr = name(nsCalDAV, "calendar-user-address-set")
	pCalendarDesc     = name(nsCalDAV, "calendar-description")
	pCalendarComps    = name(nsCalDAV, "supported-calendar-component-set")
	pCalendarDataType = name(nsCalDAV, "supported-calendar-data")
	pCalendarMaxSize  = name(nsCalDAV, "max-resource-size")
	pCalendarData     = name(nsCalDAV, "calendar-data")
	pAddressbookHome  = name(nsCardDAV, "addressbook-home-set")
	pAddressbookDesc  = name(nsCardDAV, "addressbook-description")
	pAddressDataType  = name(nsCardDAV, "supported-address-data")
	pAddressMaxSize   = name(nsCardDAV, "max-resource-size")
	pAddressData      = name(nsCardDAV, "address-data")
	pCTag             = name(nsCS, "getctag")
	pColor            = name(nsApple, "calendar-color")
)

// notInAllprop are properties returned only when asked for by name
// (RFC 4791 §9.6: calendar-data is not a property of allprop).
var notInAllprop = map[xml.Name]bool{pCalendarData: true, pAddressData: true}

// propSet is the properties of one resource, each rendered on demand.
type propSet map[xml.Name]func() string

func hrefXML(h string) string { return `<D:href>` + escape(h) + `</D:href>` }

// syncToken is the RFC 6578 token of a collection state: a URI naming the
// collection (so a token of a deleted and re-created collection is invalid)
// and its change counter.
func syncToken(c Collection) string {
	return "urn:postern:sync:" + strconv.FormatInt(c.ID, 10) + ":" + strconv.FormatInt(c.Seq, 10)
}

// parseSyncToken returns the collection ID and Seq of a token.
func parseSyncToken(s string) (id, seq int64, ok bool) {
	rest, found := strings.CutPrefix(s, "urn:postern:sync:")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rest, ":")
	if !found {
		return 0, 0, false
	}
	id, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	return id, seq, err1 == nil && err2 == nil && seq >= 0
}

func quoteETag(e string) string { return `"` + e + `"` }

const privileges = `<D:privilege><D:read/></D:privilege><D:privilege><D:write/></D:privilege>` +
	`<D:privilege><D:write-properties/></D:privilege><D:privilege><D:write-content/></D:privilege>` +
	`<D:privilege><D:bind/></D:privilege><D:privilege><D:unbind/></D:privilege>` +
	`<D:privilege><D:read-current-user-privilege-set/></D:privilege>`

func reports(k Kind) string {
	r := func(inner string) string {
		return `<D:supported-report><D:report>` + inner + `</D:report></D:supported-report>`
	}
	if k == KindCalendar {
		return r(`<C:calendar-query/>`) + r(`<C:calendar-multiget/>`) + r(`<D:sync-collection/>`)
	}
	return r(`<CR:addressbook-query/>`) + r(`<CR:addressbook-multiget/>`) + r(`<D:sync-collection/>`)
}

// props returns the live properties of res.
func (h *handler) props(res *resource) propSet {
	m := res.member
	ps := propSet{
		pCurrentPrincipal: func() string { return hrefXML(principalHref(m)) },
		pResourceType:     func() string { return `<D:collection/>` },
	}
	switch res.typ {
	case resPrincipal:
		ps[pResourceType] = func() string { return `<D:collection/><D:principal/>` }
		ps[pDisplayName] = func() string { return escape(displayName(m.Name, m.Email)) }
		ps[pPrincipalURL] = func() string { return hrefXML(principalHref(m)) }
		ps[pCalendarHome] = func() string { return hrefXML(homeHref(m, KindCalendar)) }
		ps[pAddressbookHome] = func() string { return hrefXML(homeHref(m, KindAddressBook)) }
		ps[pCalendarUserAddr] = func() string { return hrefXML("mailto:" + m.Email) }
	case resHome:
		ps[pOwner] = func() string { return hrefXML(principalHref(m)) }
		ps[pPrivileges] = func() string { return privileges }
	case resCollection:
		h.collectionProps(ps, res)
	case resObject:
		h.objectProps(ps, res, *res.obj)
	}
	return ps
}

func displayName(name, email string) string {
	if name != "" {
		return name
	}
	return email
}

func (h *handler) collectionProps(ps propSet, res *resource) {
	c := res.coll
	ps[pOwner] = func() string { return hrefXML(principalHref(res.member)) }
	ps[pPrivileges] = func() string { return privileges }
	ps[pSupportedReports] = func() string { return reports(c.Kind) }
	ps[pDisplayName] = func() string { return escape(c.DisplayName) }
	ps[pCTag] = func() string { return escape(syncToken(c)) }
	ps[pSyncToken] = func() string { return escape(syncToken(c)) }
	size := func() string { return strconv.FormatInt(h.maxSize, 10) }
	if c.Kind == KindCalendar {
		ps[pResourceType] = func() string { return `<D:collection/><C:calendar/>` }
		ps[pCalendarDesc] = func() string { return escape(c.Description) }
		ps[pColor] = func() string { return escape(c.Color) }
		ps[pCalendarComps] = func() string {
			var b strings.Builder
			for _, comp := range strings.Split(c.Components, ",") {
				b.WriteString(`<C:comp name="` + escape(comp) + `"/>`)
			}
			return b.String()
		}
		ps[pCalendarDataType] = func() string { return `<C:calendar-data content-type="text/calendar" version="2.0"/>` }
		ps[pCalendarMaxSize] = size
	} else {
		ps[pResourceType] = func() string { return `<D:collection/><CR:addressbook/>` }
		ps[pAddressbookDesc] = func() string { return escape(c.Description) }
		ps[pAddressDataType] = func() string {
			return `<CR:address-data-type content-type="text/vcard" version="3.0"/><CR:address-data-type content-type="text/vcard" version="4.0"/>`
		}
		ps[pAddressMaxSize] = size
	}
	if c.Description == "" {
		delete(ps, pCalendarDesc)
		delete(ps, pAddressbookDesc)
	}
	if c.Color == "" {
		delete(ps, pColor)
	}
}

func (h *handler) objectProps(ps propSet, res *resource, o Object) {
	ps[pResourceType] = func() string { return "" }
	ps[pETag] = func() string { return escape(quoteETag(o.ETag)) }
	ps[pContentLength] = func() string { return strconv.FormatInt(o.Size, 10) }
	ps[pLastModified] = func() string { return o.Modified.UTC().Format(http.TimeFormat) }
	ps[pOwner] = func() string { return hrefXML(principalHref(res.member)) }
	if res.kind == KindCalendar {
		ps[pContentType] = func() string { return "text/calendar; charset=utf-8; component=" + strings.ToLower(o.Component) }
		if o.Data != nil {
			ps[pCalendarData] = func() string { return escape(string(o.Data)) }
		}
	} else {
		ps[pContentType] = func() string { return "text/vcard; charset=utf-8" }
		if o.Data != nil {
			ps[pAddressData] = func() string { return escape(string(o.Data)) }
		}
	}
}

// propReq is what a PROPFIND or REPORT asks for.
type propReq struct {
	all   bool       // DAV:allprop (or an empty PROPFIND body)
	names bool       // DAV:propname
	props []xml.Name // DAV:prop, and DAV:include with allprop
}

// parsePropReq reads the DAV:prop / allprop / propname children of e.
func parsePropReq(e *node) propReq {
	var req propReq
	if e == nil {
		req.all = true
		return req
	}
	if e.child(name(nsDAV, "propname")) != nil {
		req.names = true
	}
	if e.child(name(nsDAV, "allprop")) != nil {
		req.all = true
	}
	for _, key := range []string{"prop", "include"} {
		if p := e.child(name(nsDAV, key)); p != nil {
			for _, c := range p.Children {
				req.props = append(req.props, c.XMLName)
			}
		}
	}
	if !req.all && !req.names && len(req.props) == 0 {
		req.all = true
	}
	return req
}

// wants reports whether req asks for the property n by name.
func (req propReq) wants(n xml.Name) bool {
	for _, p := range req.props {
		if p == n {
			return true
		}
	}
	return false
}

// sorted returns the property names in a stable order.
func (ps propSet) sorted() []xml.Name {
	names := make([]xml.Name, 0, len(ps))
	for n := range ps {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if names[i].Space != names[j].Space {
			return names[i].Space < names[j].Space
		}
		return names[i].Local < names[j].Local
	})
	return names
}

// render makes the response of one resource for req.
func (ps propSet) render(href string, req propReq) response {
	r := response{href: href}
	switch {
	case req.names:
		for _, n := range ps.sorted() {
			r.found = append(r.found, element(n, ""))
		}
	case req.all:
		for _, n := range ps.sorted() {
			if !notInAllprop[n] {
				r.found = append(r.found, element(n, ps[n]()))
			}
		}
		for _, n := range req.props {
			if f, ok := ps[n]; ok && notInAllprop[n] {
				r.found = append(r.found, element(n, f()))
			}
		}
	default:
		for _, n := range req.props {
			if f, ok := ps[n]; ok {
				r.found = append(r.found, element(n, f()))
			} else {
				r.missing = append(r.missing, n)
			}
		}
	}
	return r
}

// depth returns the Depth header: 0, 1, or 1 for infinity (RFC 4918 §9.1
// lets a server answer less than infinity; homes hold collections that hold
// objects, so 1 is what clients use).
func depth(r *http.Request, def int) int {
	switch strings.ToLower(strings.TrimSpace(r.Header.Get("Depth"))) {
	case "0":
		return 0
	case "1", "infinity":
		return 1
	}
	return def
}

// propfind answers PROPFIND (RFC 4918 §9.1).
func (h *handler) propfind(w http.ResponseWriter, r *http.Request, res *resource) error {
	body, ok, err := readXML(r)
	if err != nil {
		return err
	}
	var req propReq
	if ok {
		if body.XMLName != name(nsDAV, "propfind") {
			return errorf(http.StatusBadRequest, "Expected a DAV:propfind body.")
		}
		req = parsePropReq(body)
	} else {
		req.all = true
	}
	if res.typ == resNewCollection || res.typ == resNewObject {
		return errorf(http.StatusNotFound, "Not found.")
	}
	resps := []response{h.props(res).render(res.href, req)}
	if depth(r, 1) == 1 {
		children, err := h.children(r.Context(), res, req)
		if err != nil {
			return err
		}
		for _, c := range children {
			resps = append(resps, h.props(c).render(c.href, req))
		}
	}
	multistatus(w, resps, "")
	return nil
}

// children lists the members of a container resource for Depth: 1.
func (h *handler) children(ctx context.Context, res *resource, req propReq) ([]*resource, error) {
	m := res.member
	var out []*resource
	switch res.typ {
	case resRoot:
		switch res.href {
		case Prefix:
			out = append(out, &resource{typ: resPrincipal, member: m, href: principalHref(m)})
			for _, k := range []Kind{KindCalendar, KindAddressBook} {
				out = append(out, &resource{typ: resHome, member: m, kind: k, href: homeHref(m, k)})
			}
		case Prefix + "principals/":
			out = append(out, &resource{typ: resPrincipal, member: m, href: principalHref(m)})
		default:
			k := KindCalendar
			if res.href == Prefix+"addressbooks/" {
				k = KindAddressBook
			}
			out = append(out, &resource{typ: resHome, member: m, kind: k, href: homeHref(m, k)})
		}
	case resHome:
		list, err := h.store.Collections(ctx, m.ID, res.kind)
		if err != nil {
			return nil, err
		}
		for _, c := range list {
			out = append(out, &resource{typ: resCollection, member: m, kind: c.Kind, coll: c, href: collectionHref(m, c)})
		}
	case resCollection:
		withData := req.wants(pCalendarData) || req.wants(pAddressData)
		list, err := h.store.Objects(ctx, res.coll.ID, withData)
		if err != nil {
			return nil, err
		}
		for i := range list {
			out = append(out, h.objectResource(res, list[i]))
		}
	}
	return out, nil
}

func (h *handler) objectResource(coll *resource, o Object) *resource {
	return &resource{typ: resObject, member: coll.member, kind: coll.kind, coll: coll.coll, name: o.Name,
		obj: &o, href: objectHref(coll.member, coll.coll, o.Name)}
}

// httpTime formats a time for Last-Modified.
func httpTime(t time.Time) string { return t.UTC().Format(http.TimeFormat) }
