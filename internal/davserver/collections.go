package davserver

import (
	"encoding/xml"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"
)

// maxPropLen bounds display names and descriptions.
const maxPropLen = 4096

var colorRE = regexp.MustCompile(`^#[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?$`)

// setProp applies one writable collection property to c; remove clears it.
// ok is false for a property that cannot be written (RFC 4918 §9.2: 403).
func setProp(c *Collection, p *node, remove bool) (ok bool, err error) {
	text := strings.TrimSpace(p.Text)
	if remove {
		text = ""
	}
	if len(text) > maxPropLen || !utf8.ValidString(text) {
		return false, errorf(http.StatusBadRequest, "The value of %s is too long or not UTF-8.", p.XMLName.Local)
	}
	switch p.XMLName {
	case pDisplayName:
		c.DisplayName = text
	case pCalendarDesc:
		if c.Kind != KindCalendar {
			return false, nil
		}
		c.Description = text
	case pAddressbookDesc:
		if c.Kind != KindAddressBook {
			return false, nil
		}
		c.Description = text
	case pColor:
		if c.Kind != KindCalendar {
			return false, nil
		}
		if text != "" && !colorRE.MatchString(text) {
			return false, errorf(http.StatusBadRequest, "calendar-color must be #RRGGBB or #RRGGBBAA.")
		}
		c.Color = text
	default:
		return false, nil
	}
	return true, nil
}

// updates lists the DAV:set and DAV:remove instructions of e in order.
func updates(e *node) (props []*node, removes []bool) {
	for i := range e.Children {
		op := &e.Children[i]
		remove := op.XMLName == name(nsDAV, "remove")
		if op.XMLName != name(nsDAV, "set") && !remove {
			continue
		}
		if pr := op.child(name(nsDAV, "prop")); pr != nil {
			for j := range pr.Children {
				props = append(props, &pr.Children[j])
				removes = append(removes, remove)
			}
		}
	}
	return props, removes
}

// proppatch changes collection properties (RFC 4918 §9.2): all or nothing,
// a property that cannot be written fails with 403 and the others with 424.
func (h *handler) proppatch(w http.ResponseWriter, r *http.Request, res *resource) error {
	body, ok, err := readXML(r)
	if err != nil {
		return err
	}
	if !ok || body.XMLName != name(nsDAV, "propertyupdate") {
		return errorf(http.StatusBadRequest, "Expected a DAV:propertyupdate body.")
	}
	if res.typ == resNewCollection || res.typ == resNewObject {
		return errorf(http.StatusNotFound, "Not found.")
	}
	props, removes := updates(body)
	c := res.coll
	var done, refused []xml.Name
	for i, p := range props {
		ok := false
		if res.typ == resCollection {
			if ok, err = setProp(&c, p, removes[i]); err != nil {
				return err
			}
		}
		if ok {
			done = append(done, p.XMLName)
		} else {
			refused = append(refused, p.XMLName)
		}
	}
	resp := response{href: res.href}
	if len(refused) > 0 {
		resp.other = map[int][]xml.Name{http.StatusForbidden: refused, http.StatusFailedDependency: done}
	} else {
		if len(done) > 0 {
			if err := h.store.UpdateCollection(r.Context(), c); err != nil {
				return err
			}
		}
		for _, n := range done {
			resp.found = append(resp.found, element(n, ""))
		}
	}
	multistatus(w, []response{resp}, "")
	return nil
}

// mkcol creates a calendar (MKCALENDAR, RFC 4791 §5.3.1) or a calendar or an
// address book by extended MKCOL (RFC 5689), directly under the member's
// home of that kind.
func (h *handler) mkcol(w http.ResponseWriter, r *http.Request, res *resource) error {
	kindCond := `<C:calendar-collection-location-ok/>`
	if res.kind == KindAddressBook {
		kindCond = `<CR:addressbook-collection-location-ok/>`
	}
	switch res.typ {
	case resNewCollection:
	case resCollection, resObject, resHome, resPrincipal, resRoot:
		w.Header().Set("Allow", allow(res))
		return errorf(http.StatusMethodNotAllowed, "A resource exists at this URL.")
	default:
		return precondition(http.StatusForbidden, kindCond, "Collections can only be created directly in your calendar or address book home.")
	}
	if r.Method == "MKCALENDAR" && res.kind != KindCalendar {
		return precondition(http.StatusForbidden, kindCond, "Calendars can only be created in the calendar home.")
	}
	body, ok, err := readXML(r)
	if err != nil {
		return err
	}
	c := Collection{MemberID: res.member.ID, Kind: res.kind, Name: res.name, DisplayName: res.name}
	if c.Kind == KindCalendar {
		c.Components = "VEVENT,VTODO,VJOURNAL"
	}
	if ok {
		want := name(nsCalDAV, "mkcalendar")
		if r.Method == "MKCOL" {
			want = name(nsDAV, "mkcol")
		}
		if body.XMLName != want {
			return errorf(http.StatusBadRequest, "Expected a %s body.", want.Local)
		}
		if err := applyCreateProps(&c, body); err != nil {
			return err
		}
	}
	if err := h.store.CreateCollection(r.Context(), &c); err != nil {
		return err
	}
	w.Header().Set("Location", collectionHref(res.member, c))
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// applyCreateProps applies the DAV:set properties of a MKCALENDAR or
// extended MKCOL body: resourcetype must match the home, the component set
// is accepted at creation only, and calendar-timezone is accepted and not
// stored (floating times are read as UTC).
func applyCreateProps(c *Collection, body *node) error {
	props, removes := updates(body)
	for i, p := range props {
		switch p.XMLName {
		case pResourceType:
			want := name(nsCalDAV, "calendar")
			if c.Kind == KindAddressBook {
				want = name(nsCardDAV, "addressbook")
			}
			if p.child(want) == nil {
				return precondition(http.StatusForbidden, `<D:valid-resourcetype/>`,
					"Only a %s can be created here.", want.Local)
			}
			continue
		case pCalendarComps:
			if c.Kind != KindCalendar {
				break
			}
			var comps []string
			for _, comp := range p.all(name(nsCalDAV, "comp")) {
				n := strings.ToUpper(comp.attr("name"))
				if !calendarComponents[n] {
					return precondition(http.StatusForbidden, `<C:supported-calendar-component/>`, "The component %q is not supported.", n)
				}
				comps = append(comps, n)
			}
			if len(comps) == 0 {
				return errorf(http.StatusBadRequest, "supported-calendar-component-set names no component.")
			}
			c.Components = strings.Join(comps, ",")
			continue
		case name(nsCalDAV, "calendar-timezone"):
			continue
		}
		ok, err := setProp(c, p, removes[i])
		if err != nil {
			return err
		}
		if !ok {
			return errorf(http.StatusForbidden, "The property %s (%s) cannot be set.", p.XMLName.Local, p.XMLName.Space)
		}
	}
	return nil
}
