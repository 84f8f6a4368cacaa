package davserver

import (
	"net/http"
	"strings"
	"time"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-vcard"
)

// compFilter is a CALDAV:comp-filter (RFC 4791 §9.7.1).
type compFilter struct {
	name       string
	notDefined bool
	start, end time.Time
	hasRange   bool
	props      []propFilter
	comps      []compFilter
}

// propFilter is a CALDAV:prop-filter (§9.7.2) or CARDDAV:prop-filter
// (RFC 6352 §10.5.1).
type propFilter struct {
	name       string
	notDefined bool
	start, end time.Time
	hasRange   bool
	allOf      bool // CardDAV test="allof"
	texts      []textMatch
	params     []paramFilter
}

type paramFilter struct {
	name       string
	notDefined bool
	text       *textMatch
}

// textMatch is a text-match (RFC 4791 §9.7.5, RFC 6352 §10.5.4).
type textMatch struct {
	text      string
	collation string
	matchType string // CardDAV: equals, contains, starts-with, ends-with
	negate    bool
}

func parseTimeRange(e *node) (start, end time.Time, err error) {
	const layout = "20060102T150405Z"
	if s := e.attr("start"); s != "" {
		if start, err = time.Parse(layout, s); err != nil {
			return start, end, errorf(http.StatusBadRequest, "Invalid time-range start %q.", s)
		}
	}
	if s := e.attr("end"); s != "" {
		if end, err = time.Parse(layout, s); err != nil {
			return start, end, errorf(http.StatusBadRequest, "Invalid time-range end %q.", s)
		}
	}
	if start.IsZero() && end.IsZero() {
		return start, end, errorf(http.StatusBadRequest, "A time-range needs a start or an end.")
	}
	return start, end, nil
}

func parseTextMatch(e *node) (*textMatch, error) {
	tm := &textMatch{text: e.Text, collation: e.attr("collation"), matchType: e.attr("match-type"), negate: e.attr("negate-condition") == "yes"}
	switch tm.collation {
	case "", "i;ascii-casemap", "i;octet", "i;unicode-casemap":
	default:
		// RFC 4791 §7.5.1: an unsupported collation is a precondition failure.
		return nil, precondition(http.StatusForbidden, `<C:supported-collation/>`, "The collation %q is not supported.", tm.collation)
	}
	return tm, nil
}

func parseParamFilter(ns string, e *node) (paramFilter, error) {
	pf := paramFilter{name: strings.ToUpper(e.attr("name")), notDefined: e.child(name(ns, "is-not-defined")) != nil}
	if t := e.child(name(ns, "text-match")); t != nil {
		tm, err := parseTextMatch(t)
		if err != nil {
			return pf, err
		}
		pf.text = tm
	}
	return pf, nil
}

func parsePropFilter(ns string, e *node) (propFilter, error) {
	pf := propFilter{name: strings.ToUpper(e.attr("name")), notDefined: e.child(name(ns, "is-not-defined")) != nil, allOf: e.attr("test") == "allof"}
	if tr := e.child(name(ns, "time-range")); tr != nil {
		s, en, err := parseTimeRange(tr)
		if err != nil {
			return pf, err
		}
		pf.start, pf.end, pf.hasRange = s, en, true
	}
	for _, t := range e.all(name(ns, "text-match")) {
		tm, err := parseTextMatch(t)
		if err != nil {
			return pf, err
		}
		pf.texts = append(pf.texts, *tm)
	}
	for _, p := range e.all(name(ns, "param-filter")) {
		par, err := parseParamFilter(ns, p)
		if err != nil {
			return pf, err
		}
		pf.params = append(pf.params, par)
	}
	return pf, nil
}

func parseCompFilter(e *node) (compFilter, error) {
	cf := compFilter{name: strings.ToUpper(e.attr("name")), notDefined: e.child(name(nsCalDAV, "is-not-defined")) != nil}
	if tr := e.child(name(nsCalDAV, "time-range")); tr != nil {
		s, en, err := parseTimeRange(tr)
		if err != nil {
			return cf, err
		}
		cf.start, cf.end, cf.hasRange = s, en, true
	}
	for _, p := range e.all(name(nsCalDAV, "prop-filter")) {
		pf, err := parsePropFilter(nsCalDAV, p)
		if err != nil {
			return cf, err
		}
		cf.props = append(cf.props, pf)
	}
	for _, c := range e.all(name(nsCalDAV, "comp-filter")) {
		child, err := parseCompFilter(c)
		if err != nil {
			return cf, err
		}
		cf.comps = append(cf.comps, child)
	}
	return cf, nil
}

// matchText applies a text-match to a value. CalDAV's default collation is
// i;ascii-casemap, CardDAV's i;unicode-casemap; both fold case, which is
// what users expect of a search.
func (tm textMatch) match(value string) bool {
	text := tm.text
	if tm.collation != "i;octet" {
		value, text = strings.ToLower(value), strings.ToLower(text)
	}
	var ok bool
	switch tm.matchType {
	case "equals":
		ok = value == text
	case "starts-with":
		ok = strings.HasPrefix(value, text)
	case "ends-with":
		ok = strings.HasSuffix(value, text)
	default:
		ok = strings.Contains(value, text)
	}
	return ok != tm.negate
}

// matchCalendar evaluates the top comp-filter (VCALENDAR) against cal,
// expanding recurrences under the budget x; err when it runs out.
func matchCalendar(f compFilter, cal *ical.Calendar, x *expansion) (bool, error) {
	return matchComps(f, []*ical.Component{cal.Component}, x)
}

// matchComps: a comp-filter matches when one component of its name among
// comps satisfies it, or, with is-not-defined, when none has its name.
func matchComps(f compFilter, comps []*ical.Component, x *expansion) (bool, error) {
	found := false
	for _, c := range comps {
		if c.Name != f.name {
			continue
		}
		found = true
		if f.notDefined {
			return false, nil
		}
		ok, err := matchComp(f, c, x)
		if ok || err != nil {
			return ok, err
		}
	}
	return f.notDefined && !found, nil
}

func matchComp(f compFilter, c *ical.Component, x *expansion) (bool, error) {
	for _, pf := range f.props {
		if !matchICalProp(pf, c.Props.Values(pf.name)) {
			return false, nil
		}
	}
	// The time range last: it is the only costly test.
	for _, cf := range f.comps {
		if ok, err := matchComps(cf, c.Children, x); !ok || err != nil {
			return false, err
		}
	}
	if f.hasRange {
		return matchTimeRange(c, f.start, f.end, x)
	}
	return true, nil
}

func matchICalProp(f propFilter, props []ical.Prop) bool {
	if f.notDefined {
		return len(props) == 0
	}
	for _, p := range props {
		ok := true
		if f.hasRange {
			t, valid := propTime(&p)
			ok = valid && overlaps(t, t, f.start, f.end)
		}
		for _, tm := range f.texts {
			ok = ok && tm.match(p.Value)
		}
		for _, pf := range f.params {
			ok = ok && matchParam(pf, p.Params.Values(pf.name))
		}
		if ok {
			return true
		}
	}
	return false
}

func matchParam(f paramFilter, values []string) bool {
	if f.notDefined {
		return len(values) == 0
	}
	if len(values) == 0 {
		return false
	}
	if f.text == nil {
		return true
	}
	for _, v := range values {
		if f.text.match(v) {
			return true
		}
	}
	return false
}

// cardFilter is a CARDDAV:filter (RFC 6352 §10.5).
type cardFilter struct {
	allOf bool
	props []propFilter
}

func parseCardFilter(e *node) (cardFilter, error) {
	var f cardFilter
	if e == nil {
		return f, nil
	}
	f.allOf = e.attr("test") == "allof"
	for _, p := range e.all(name(nsCardDAV, "prop-filter")) {
		pf, err := parsePropFilter(nsCardDAV, p)
		if err != nil {
			return f, err
		}
		f.props = append(f.props, pf)
	}
	return f, nil
}

// match: an empty filter matches every card; otherwise anyof (the default)
// or allof of the prop-filters.
func (f cardFilter) match(card vcard.Card) bool {
	if len(f.props) == 0 {
		return true
	}
	for _, pf := range f.props {
		ok := matchCardProp(pf, card[pf.name])
		if ok && !f.allOf {
			return true
		}
		if !ok && f.allOf {
			return false
		}
	}
	return f.allOf
}

// matchCardProp: a prop-filter matches when one field of its name passes
// its text-matches (anyof or allof) and all its param-filters.
func matchCardProp(f propFilter, fields []*vcard.Field) bool {
	if f.notDefined {
		return len(fields) == 0
	}
	for _, field := range fields {
		ok := true
		if len(f.texts) > 0 {
			ok = f.allOf
			for _, tm := range f.texts {
				m := tm.match(field.Value)
				if f.allOf {
					ok = ok && m
				} else {
					ok = ok || m
				}
			}
		}
		for _, pf := range f.params {
			ok = ok && matchParam(pf, field.Params[pf.name])
		}
		if ok {
			return true
		}
	}
	return false
}
