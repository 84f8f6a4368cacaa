package davserver

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// report dispatches REPORT by its body's root element.
func (h *handler) report(w http.ResponseWriter, r *http.Request, res *resource) error {
	body, ok, err := readXML(r)
	if err != nil {
		return err
	}
	if !ok {
		return errorf(http.StatusBadRequest, "REPORT needs a body.")
	}
	if res.typ == resNewCollection || res.typ == resNewObject {
		return errorf(http.StatusNotFound, "Not found.")
	}
	supported := precondition(http.StatusForbidden, `<D:supported-report/>`, "The report %s is not supported on this resource.", body.XMLName.Local)
	switch body.XMLName {
	case name(nsCalDAV, "calendar-query"):
		if res.typ != resCollection || res.kind != KindCalendar {
			return supported
		}
		return h.calendarQuery(w, r, res, body)
	case name(nsCardDAV, "addressbook-query"):
		if res.typ != resCollection || res.kind != KindAddressBook {
			return supported
		}
		return h.addressbookQuery(w, r, res, body)
	case name(nsCalDAV, "calendar-multiget"), name(nsCardDAV, "addressbook-multiget"):
		if res.typ != resCollection || (res.kind == KindCalendar) != (body.XMLName.Space == nsCalDAV) {
			return supported
		}
		return h.multiget(w, r, res, body)
	case name(nsDAV, "sync-collection"):
		if res.typ != resCollection {
			return supported
		}
		return h.syncCollection(w, r, res, body)
	}
	return supported
}

// respond renders objects for a report's DAV:prop.
func (h *handler) respond(res *resource, req propReq, objs []Object) []response {
	out := make([]response, 0, len(objs))
	for _, o := range objs {
		c := h.objectResource(res, o)
		out = append(out, h.props(c).render(c.href, req))
	}
	return out
}

// calendarQuery answers calendar-query (RFC 4791 §7.8). The store's
// start/end index picks the candidates; the filter is then evaluated
// exactly, recurrences expanded lazily under the request's budget: a query
// that would examine too many instances is refused with max-instances
// rather than answered in part.
func (h *handler) calendarQuery(w http.ResponseWriter, r *http.Request, res *resource, body *node) error {
	fe := body.child(name(nsCalDAV, "filter"))
	if fe == nil {
		return errorf(http.StatusBadRequest, "calendar-query needs a filter.")
	}
	top := fe.child(name(nsCalDAV, "comp-filter"))
	if top == nil {
		return precondition(http.StatusForbidden, `<C:valid-filter/>`, "The filter needs a VCALENDAR comp-filter.")
	}
	f, err := parseCompFilter(top)
	if err != nil {
		return err
	}
	if f.name != "VCALENDAR" {
		return precondition(http.StatusForbidden, `<C:valid-filter/>`, "The top comp-filter must be VCALENDAR.")
	}
	var objs []Object
	// A single component-type filter narrows by the index; else read all.
	if len(f.comps) == 1 && !f.comps[0].notDefined && !f.notDefined {
		cf := f.comps[0]
		var start, end time.Time
		if cf.hasRange {
			start, end = cf.start, cf.end
		}
		objs, err = h.store.ObjectsInRange(r.Context(), res.coll.ID, cf.name, start, end)
	} else {
		objs, err = h.store.Objects(r.Context(), res.coll.ID, true)
	}
	if err != nil {
		return err
	}
	var matched []Object
	x := h.newExpansion(r.Context())
	for _, o := range objs {
		if err := x.startObject(); err != nil {
			return h.tooExpensive(err, o.Name)
		}
		cal, _, err := parseCalendar(o.Data, nil)
		if err != nil {
			h.log.Warn("stored calendar object does not parse", "collection", o.CollectionID, "name", o.Name, "err", err)
			continue
		}
		ok, err := matchCalendar(f, cal, x)
		if err != nil {
			return h.tooExpensive(err, o.Name)
		}
		if ok {
			matched = append(matched, o)
		}
	}
	multistatus(w, h.respond(res, parsePropReq(body), matched), "")
	return nil
}

// addressbookQuery answers addressbook-query (RFC 6352 §8.6).
func (h *handler) addressbookQuery(w http.ResponseWriter, r *http.Request, res *resource, body *node) error {
	f, err := parseCardFilter(body.child(name(nsCardDAV, "filter")))
	if err != nil {
		return err
	}
	limit := 0
	if l := body.child(name(nsCardDAV, "limit")); l != nil {
		if n := l.child(name(nsCardDAV, "nresults")); n != nil {
			limit, _ = strconv.Atoi(strings.TrimSpace(n.Text))
		}
	}
	objs, err := h.store.Objects(r.Context(), res.coll.ID, true)
	if err != nil {
		return err
	}
	var matched []Object
	for _, o := range objs {
		card, _, err := parseCard(o.Data)
		if err != nil {
			h.log.Warn("stored vCard does not parse", "collection", o.CollectionID, "name", o.Name, "err", err)
			continue
		}
		if f.match(card) {
			matched = append(matched, o)
		}
		if limit > 0 && len(matched) == limit {
			break
		}
	}
	multistatus(w, h.respond(res, parsePropReq(body), matched), "")
	return nil
}

// multiget answers calendar-multiget (RFC 4791 §7.9) and
// addressbook-multiget (RFC 6352 §8.7): hrefs that do not name an object of
// this collection get a 404 response of their own.
func (h *handler) multiget(w http.ResponseWriter, r *http.Request, res *resource, body *node) error {
	hrefs := body.all(name(nsDAV, "href"))
	var names []string
	var missing []response
	for _, e := range hrefs {
		n, ok := h.resolveHref(res.member, res.coll, e.Text)
		if !ok {
			missing = append(missing, response{href: strings.TrimSpace(e.Text), status: http.StatusNotFound})
			continue
		}
		names = append(names, n)
	}
	objs, err := h.store.ObjectsByName(r.Context(), res.coll.ID, names)
	if err != nil {
		return err
	}
	found := map[string]bool{}
	for _, o := range objs {
		found[o.Name] = true
	}
	for _, n := range names {
		if !found[n] {
			missing = append(missing, response{href: objectHref(res.member, res.coll, n), status: http.StatusNotFound})
		}
	}
	multistatus(w, append(h.respond(res, parsePropReq(body), objs), missing...), "")
	return nil
}

// syncCollection answers sync-collection (RFC 6578 §3.2): with an empty
// token every object; with a token of this collection the objects changed
// since and a 404 response per deleted object. A token of another or an
// earlier incarnation of the collection is refused with valid-sync-token,
// which makes the client start over.
func (h *handler) syncCollection(w http.ResponseWriter, r *http.Request, res *resource, body *node) error {
	if lvl := body.child(name(nsDAV, "sync-level")); lvl != nil && strings.TrimSpace(lvl.Text) != "1" {
		return errorf(http.StatusBadRequest, "Only sync-level 1 is supported: collections hold no sub-collections.")
	}
	token := ""
	if t := body.child(name(nsDAV, "sync-token")); t != nil {
		token = strings.TrimSpace(t.Text)
	}
	invalid := precondition(http.StatusForbidden, `<D:valid-sync-token/>`, "The sync token is not valid for this collection; sync again from scratch.")
	var since int64
	if token != "" {
		id, seq, ok := parseSyncToken(token)
		if !ok || id != res.coll.ID || seq > res.coll.Seq {
			return invalid
		}
		since = seq
	}
	changes, seq, err := h.store.Changes(r.Context(), res.coll.ID, since)
	if err != nil {
		return err
	}
	var names []string
	var gone []response
	for _, c := range changes {
		switch {
		case !c.Deleted:
			names = append(names, c.Name)
		case token != "":
			// RFC 6578 §3.5.2: removed members are reported to a client
			// that has a token, never in an initial sync.
			gone = append(gone, response{href: objectHref(res.member, res.coll, c.Name), status: http.StatusNotFound})
		}
	}
	req := parsePropReq(body)
	withData := req.wants(pCalendarData) || req.wants(pAddressData)
	var objs []Object
	if withData {
		objs, err = h.store.ObjectsByName(r.Context(), res.coll.ID, names)
	} else {
		objs, err = h.objectsMeta(r, res.coll.ID, names)
	}
	if err != nil {
		return err
	}
	// Objects changed after Changes was read carry a newer state; the
	// token below is the one Changes returned, so the client sees them
	// again next time, which is harmless.
	c := res.coll
	c.Seq = seq
	multistatus(w, append(h.respond(res, req, objs), gone...), syncToken(c))
	return nil
}

// objectsMeta returns the named objects without their data.
func (h *handler) objectsMeta(r *http.Request, collectionID int64, names []string) ([]Object, error) {
	if len(names) == 0 {
		return nil, nil
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	all, err := h.store.Objects(r.Context(), collectionID, false)
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, o := range all {
		if want[o.Name] {
			out = append(out, o)
		}
	}
	return out, nil
}
