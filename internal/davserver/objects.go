package davserver

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// etagList parses an If-Match / If-None-Match value (RFC 9110 §13.1.1):
// "*" or a list of entity tags; weak tags compare by their opaque part.
func etagList(h string) (star bool, tags []string) {
	h = strings.TrimSpace(h)
	if h == "*" {
		return true, nil
	}
	for _, t := range strings.Split(h, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		t = strings.Trim(t, `"`)
		if t != "" {
			tags = append(tags, t)
		}
	}
	return false, tags
}

// checkPreconditions applies If-Match and If-None-Match to the current
// object (nil when absent), inside the store's transaction so that two
// clients editing the same object cannot both win (RFC 9110 §13.2: a failed
// condition on a state-changing method is 412).
func checkPreconditions(r *http.Request, current *Object) error {
	if v := r.Header.Get("If-Match"); v != "" {
		star, tags := etagList(v)
		ok := current != nil && (star || contains(tags, current.ETag))
		if !ok {
			return errorf(http.StatusPreconditionFailed, "The resource was changed or deleted by someone else (If-Match failed); fetch it again.")
		}
	}
	if v := r.Header.Get("If-None-Match"); v != "" {
		star, tags := etagList(v)
		if current != nil && (star || contains(tags, current.ETag)) {
			return errorf(http.StatusPreconditionFailed, "The resource already exists (If-None-Match failed).")
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// get serves GET and HEAD of an object.
func (h *handler) get(w http.ResponseWriter, r *http.Request, res *resource) error {
	if res.typ != resObject {
		if res.typ == resNewObject {
			return errorf(http.StatusNotFound, "Not found.")
		}
		w.Header().Set("Allow", allow(res))
		return errorf(http.StatusMethodNotAllowed, "GET is only supported on calendar and address objects; use PROPFIND or REPORT on collections.")
	}
	o := res.obj
	if res.kind == KindCalendar {
		w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "text/vcard; charset=utf-8")
	}
	w.Header().Set("ETag", quoteETag(o.ETag))
	w.Header().Set("Last-Modified", httpTime(o.Modified))
	if v := r.Header.Get("If-None-Match"); v != "" {
		if star, tags := etagList(v); star || contains(tags, o.ETag) {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(o.Data)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(o.Data)
	}
	return nil
}

// put creates or replaces an object (RFC 4791 §5.3.2, RFC 6352 §6.3.2).
func (h *handler) put(w http.ResponseWriter, r *http.Request, res *resource) error {
	if res.typ != resObject && res.typ != resNewObject {
		w.Header().Set("Allow", allow(res))
		return errorf(http.StatusMethodNotAllowed, "PUT is only supported on objects inside a calendar or an address book.")
	}
	maxCond := `<C:max-resource-size/>`
	validCond, uidCond := `<C:valid-calendar-data/>`, "C:no-uid-conflict"
	what := "iCalendar"
	if res.kind == KindAddressBook {
		maxCond, validCond, uidCond, what = `<CR:max-resource-size/>`, `<CR:valid-address-data/>`, "CR:no-uid-conflict", "vCard"
	}
	tooBig := precondition(http.StatusRequestEntityTooLarge, maxCond, "The object is larger than the limit of %d bytes.", h.maxSize)
	if r.ContentLength > h.maxSize {
		return tooBig
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, h.maxSize+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "Cannot read the request body.")
	}
	if int64(len(data)) > h.maxSize {
		return tooBig
	}
	var o Object
	if res.kind == KindCalendar {
		_, o, err = parseCalendar(data, h.newExpansion(r.Context()))
		if err == nil && !contains(strings.Split(res.coll.Components, ","), o.Component) {
			return precondition(http.StatusForbidden, `<C:supported-calendar-component/>`,
				"This calendar does not accept %s components (it accepts %s).", o.Component, res.coll.Components)
		}
	} else {
		_, o, err = parseCard(data)
	}
	if err != nil {
		return precondition(http.StatusForbidden, validCond, "Invalid %s data: %v.", what, err)
	}
	o.CollectionID, o.Name, o.Data = res.coll.ID, res.name, data
	created, err := h.store.PutObject(r.Context(), &o, func(current *Object) error {
		return checkPreconditions(r, current)
	})
	var uc *UIDConflictError
	if errors.As(err, &uc) {
		href := ""
		if uc.Name != "" {
			href = hrefXML(objectHref(res.member, res.coll, uc.Name))
		}
		return precondition(http.StatusForbidden, "<"+uidCond+">"+href+"</"+uidCond+">",
			"Another object in this collection has the UID %q.", o.UID)
	}
	if err != nil {
		return err
	}
	// The stored bytes are exactly the request body, so the ETag may be
	// returned (RFC 4791 §5.3.4).
	w.Header().Set("ETag", quoteETag(o.ETag))
	if created {
		w.Header().Set("Location", res.href)
		w.WriteHeader(http.StatusCreated)
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

// delete removes an object or a whole collection.
func (h *handler) delete(w http.ResponseWriter, r *http.Request, res *resource) error {
	switch res.typ {
	case resObject:
		err := h.store.DeleteObject(r.Context(), res.coll.ID, res.name, func(current *Object) error {
			return checkPreconditions(r, current)
		})
		if err != nil {
			return err
		}
	case resCollection:
		if r.Header.Get("If-Match") != "" {
			// Collections have no ETag; only "*" (it exists) can hold.
			if star, _ := etagList(r.Header.Get("If-Match")); !star {
				return errorf(http.StatusPreconditionFailed, "If-Match failed.")
			}
		}
		if err := h.store.DeleteCollection(r.Context(), res.coll.ID); err != nil {
			return err
		}
	case resNewObject, resNewCollection:
		return errorf(http.StatusNotFound, "Not found.")
	default:
		return errorf(http.StatusForbidden, "This resource cannot be deleted.")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
