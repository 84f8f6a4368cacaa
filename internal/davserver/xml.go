package davserver

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Namespaces, with the prefixes every response declares.
const (
	nsDAV     = "DAV:"
	nsCalDAV  = "urn:ietf:params:xml:ns:caldav"
	nsCardDAV = "urn:ietf:params:xml:ns:carddav"
	nsCS      = "http://calendarserver.org/ns/" // getctag
	nsApple   = "http://apple.com/ns/ical/"     // calendar-color
)

var prefixes = map[string]string{nsDAV: "D", nsCalDAV: "C", nsCardDAV: "CR", nsCS: "CS", nsApple: "A"}

const (
	xmlHeader = `<?xml version="1.0" encoding="utf-8"?>` + "\n"
	nsAttrs   = ` xmlns:D="DAV:" xmlns:C="` + nsCalDAV + `" xmlns:CR="` + nsCardDAV + `" xmlns:CS="` + nsCS + `" xmlns:A="` + nsApple + `"`
)

// maxXMLBody bounds a request body of XML (PROPFIND, REPORT, ...).
const maxXMLBody = 1 << 20

// node is a parsed XML element: requests are small, and a generic tree is
// simpler to walk than one struct per request type.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []node     `xml:",any"`
	Text     string     `xml:",chardata"`
}

func name(space, local string) xml.Name { return xml.Name{Space: space, Local: local} }

// child returns the first child called n, or nil.
func (e *node) child(n xml.Name) *node {
	for i := range e.Children {
		if e.Children[i].XMLName == n {
			return &e.Children[i]
		}
	}
	return nil
}

// all returns the children called n.
func (e *node) all(n xml.Name) []*node {
	var out []*node
	for i := range e.Children {
		if e.Children[i].XMLName == n {
			out = append(out, &e.Children[i])
		}
	}
	return out
}

func (e *node) attr(local string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == local && (a.Name.Space == "" || a.Name.Space == e.XMLName.Space) {
			return a.Value
		}
	}
	return ""
}

// readXML parses the request body; ok is false when it is empty.
func readXML(r *http.Request) (*node, bool, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxXMLBody+1))
	if err != nil {
		return nil, false, errorf(http.StatusBadRequest, "Cannot read the request body.")
	}
	if len(body) > maxXMLBody {
		return nil, false, errorf(http.StatusRequestEntityTooLarge, "The request body is larger than %d bytes.", maxXMLBody)
	}
	if strings.TrimSpace(string(body)) == "" {
		return nil, false, nil
	}
	var n node
	dec := xml.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&n); err != nil {
		return nil, false, errorf(http.StatusBadRequest, "The request body is not well-formed XML: %v", err)
	}
	return &n, true, nil
}

// escape escapes text for XML character data and attribute values.
func escape(s string) string {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return ""
	}
	return b.String()
}

// tag returns the qualified name of n for output: a declared prefix, or a
// prefix declared on the element itself for other namespaces.
func tag(n xml.Name) (open, close string) {
	if p, ok := prefixes[n.Space]; ok {
		return p + ":" + n.Local, p + ":" + n.Local
	}
	if n.Space == "" {
		return n.Local, n.Local
	}
	return "X:" + n.Local + ` xmlns:X="` + escape(n.Space) + `"`, "X:" + n.Local
}

// element renders <n>inner</n>, or <n/> when inner is empty.
func element(n xml.Name, inner string) string {
	open, cl := tag(n)
	if inner == "" {
		return "<" + open + "/>"
	}
	return "<" + open + ">" + inner + "</" + cl + ">"
}

// response is one DAV:response of a multistatus (RFC 4918 §14.24).
type response struct {
	href    string
	status  int                // for a response without propstat (404 of a sync-collection)
	found   []string           // rendered properties
	missing []xml.Name         // 404 properties
	other   map[int][]xml.Name // other statuses of PROPPATCH (403, 424)
}

func statusLine(code int) string {
	return fmt.Sprintf("HTTP/1.1 %d %s", code, http.StatusText(code))
}

// multistatus writes a 207 with responses and, for sync-collection, the
// new sync token (RFC 6578 §6.4).
func multistatus(w http.ResponseWriter, resps []response, syncToken string) {
	var b strings.Builder
	b.WriteString(xmlHeader)
	b.WriteString(`<D:multistatus` + nsAttrs + `>`)
	for _, r := range resps {
		b.WriteString(`<D:response><D:href>` + escape(r.href) + `</D:href>`)
		if r.status != 0 {
			b.WriteString(`<D:status>` + statusLine(r.status) + `</D:status>`)
		}
		if len(r.found) > 0 {
			b.WriteString(`<D:propstat><D:prop>` + strings.Join(r.found, "") + `</D:prop><D:status>` + statusLine(http.StatusOK) + `</D:status></D:propstat>`)
		}
		writeNames := func(names []xml.Name, code int) {
			if len(names) == 0 {
				return
			}
			b.WriteString(`<D:propstat><D:prop>`)
			for _, n := range names {
				b.WriteString(element(n, ""))
			}
			b.WriteString(`</D:prop><D:status>` + statusLine(code) + `</D:status></D:propstat>`)
		}
		writeNames(r.missing, http.StatusNotFound)
		for _, code := range []int{http.StatusForbidden, http.StatusFailedDependency} {
			writeNames(r.other[code], code)
		}
		b.WriteString(`</D:response>`)
	}
	if syncToken != "" {
		b.WriteString(`<D:sync-token>` + escape(syncToken) + `</D:sync-token>`)
	}
	b.WriteString(`</D:multistatus>`)
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusMultiStatus)
	w.Write([]byte(b.String()))
}
