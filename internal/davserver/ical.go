package davserver

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"
)

// calendarComponents are the components a calendar may store.
var calendarComponents = map[string]bool{"VEVENT": true, "VTODO": true, "VJOURNAL": true, "VFREEBUSY": true}

// parseCalendar parses and checks a calendar object resource (RFC 4791
// §4.1): one iCalendar object, no METHOD, one component type besides
// VTIMEZONE, one UID shared by all its components. It returns the object
// to store, without Name, CollectionID and Data. With x (a PUT) it also
// refuses an RRULE rrule-go would search for ever (checkRule) and computes
// the index bounds (Start, End) under that budget.
func parseCalendar(data []byte, x *expansion) (cal *ical.Calendar, o Object, err error) {
	// go-ical panics on some malformed lines ("0;0=0", found by
	// FuzzParseCalendar): a panic is invalid data, not a crash.
	defer func() {
		if r := recover(); r != nil {
			cal, o, err = nil, Object{}, fmt.Errorf("not valid iCalendar data")
		}
	}()
	return parseCalendarData(data, x)
}

func parseCalendarData(data []byte, x *expansion) (*ical.Calendar, Object, error) {
	var o Object
	dec := ical.NewDecoder(bytes.NewReader(data))
	cal, err := dec.Decode()
	if err != nil {
		return nil, o, fmt.Errorf("not valid iCalendar data: %v", err)
	}
	if extra, err := dec.Decode(); err == nil && extra != nil {
		return nil, o, fmt.Errorf("more than one VCALENDAR object")
	}
	if v := cal.Props.Get(ical.PropVersion); v == nil || v.Value != "2.0" {
		return nil, o, fmt.Errorf("VERSION:2.0 is missing")
	}
	if cal.Props.Get(ical.PropMethod) != nil {
		return nil, o, fmt.Errorf("a calendar object resource must not have a METHOD property (RFC 4791 §4.1)")
	}
	first := true
	for _, c := range cal.Children {
		if c.Name == ical.CompTimezone {
			continue
		}
		if !calendarComponents[c.Name] {
			return nil, o, fmt.Errorf("unsupported component %s", c.Name)
		}
		if o.Component != "" && o.Component != c.Name {
			return nil, o, fmt.Errorf("more than one component type (%s and %s)", o.Component, c.Name)
		}
		o.Component = c.Name
		uid := ""
		if p := c.Props.Get(ical.PropUID); p != nil {
			uid = p.Value
		}
		if uid == "" {
			return nil, o, fmt.Errorf("%s without UID", c.Name)
		}
		if o.UID != "" && uid != o.UID {
			return nil, o, fmt.Errorf("more than one UID (%s and %s)", o.UID, uid)
		}
		o.UID = uid
		if x == nil {
			// A stored object: one refused since is matched
			// conservatively (matchTimeRange), not hidden.
			continue
		}
		if s, _, ok := interval(c); ok {
			if _, err := recurrence(c, s); errors.Is(err, errUnreachable) {
				return nil, o, err
			}
		}
		start, end := componentBounds(c, x)
		if first || start.IsZero() || (!o.Start.IsZero() && start.Before(o.Start)) {
			o.Start = start
		}
		if first || end.IsZero() || (!o.End.IsZero() && end.After(o.End)) {
			o.End = end
		}
		first = false
	}
	if o.Component == "" {
		return nil, o, fmt.Errorf("no VEVENT, VTODO, VJOURNAL or VFREEBUSY component")
	}
	return cal, o, nil
}

// propTime parses a DATE or DATE-TIME property. A TZID this machine does
// not know (Windows names, custom VTIMEZONEs) falls back to UTC rather than
// refusing the object: its times are then off by the zone offset at most,
// which the index (componentBounds) widens by a day to cover.
func propTime(p *ical.Prop) (time.Time, bool) {
	if p == nil {
		return time.Time{}, false
	}
	t, err := p.DateTime(time.UTC)
	if err != nil && p.Params.Get(ical.PropTimezoneID) != "" {
		q := *p
		q.Params = ical.Params{}
		for k, v := range p.Params {
			if k != ical.PropTimezoneID {
				q.Params[k] = v
			}
		}
		t, err = q.DateTime(time.UTC)
	}
	return t, err == nil
}

func isDate(p *ical.Prop) bool {
	return p != nil && (p.ValueType() == ical.ValueDate || (p.ValueType() == ical.ValueDefault && len(p.Value) == 8))
}

// interval returns the time span of one component instance (RFC 4791 §9.9):
// ok is false when the component has no time (it then matches every range
// for VTODO, none for VEVENT/VJOURNAL).
func interval(c *ical.Component) (start, end time.Time, ok bool) {
	dtstart := c.Props.Get(ical.PropDateTimeStart)
	s, hasStart := propTime(dtstart)
	var dur time.Duration
	hasDur := false
	if p := c.Props.Get(ical.PropDuration); p != nil {
		if d, err := p.Duration(); err == nil {
			dur, hasDur = d, true
		}
	}
	switch c.Name {
	case ical.CompEvent, ical.CompJournal:
		if !hasStart {
			return time.Time{}, time.Time{}, false
		}
		if e, ok := propTime(c.Props.Get(ical.PropDateTimeEnd)); ok && c.Name == ical.CompEvent {
			return s, e, true
		}
		if hasDur && c.Name == ical.CompEvent {
			return s, s.Add(dur), true
		}
		if isDate(dtstart) {
			return s, s.AddDate(0, 0, 1), true
		}
		return s, s, true
	case ical.CompToDo:
		due, hasDue := propTime(c.Props.Get(ical.PropDue))
		switch {
		case hasStart && hasDur:
			return s, s.Add(dur), true
		case hasStart && hasDue:
			return s, due, true
		case hasDue:
			return due, due, true
		case hasStart:
			return s, s, true
		}
	}
	return time.Time{}, time.Time{}, false
}

// recurrence returns the component's recurrence set, nil when it does not
// recur; err when its RRULE cannot be understood.
func recurrence(c *ical.Component, start time.Time) (*rrule.Set, error) {
	rrules := c.Props.Values(ical.PropRecurrenceRule)
	rdates := c.Props.Values(ical.PropRecurrenceDates)
	if len(rrules) == 0 && len(rdates) == 0 {
		return nil, nil
	}
	set := &rrule.Set{}
	set.DTStart(start)
	for _, p := range rrules {
		opt, err := rrule.StrToROptionInLocation(p.Value, start.Location())
		if err != nil {
			return nil, err
		}
		opt.Dtstart = start
		if err := checkRule(opt, start); err != nil {
			return nil, err
		}
		rule, err := rrule.NewRRule(*opt)
		if err != nil {
			return nil, err
		}
		set.RRule(rule)
	}
	// The series starts with DTSTART itself (RFC 5545 §3.8.5.3).
	set.RDate(start)
	for _, name := range []string{ical.PropRecurrenceDates, ical.PropExceptionDates} {
		for _, p := range c.Props.Values(name) {
			for _, v := range strings.Split(p.Value, ",") {
				q := p
				q.Value = v
				if strings.Contains(v, "/") { // RDATE;VALUE=PERIOD: its start
					q.Value, _, _ = strings.Cut(v, "/")
					q.Params = ical.Params{}
				}
				t, ok := propTime(&q)
				if !ok {
					continue
				}
				if name == ical.PropRecurrenceDates {
					set.RDate(t)
				} else {
					set.ExDate(t)
				}
			}
		}
	}
	return set, nil
}

// componentBounds is the index entry of one component: the span of all its
// instances, widened by a day on each side for times whose zone is floating
// or unknown. A zero End is unbounded (a series without UNTIL or COUNT, or
// one too long to walk within x); a zero Start too, for components without
// a time.
func componentBounds(c *ical.Component, x *expansion) (start, end time.Time) {
	s, e, ok := interval(c)
	if !ok {
		return time.Time{}, time.Time{}
	}
	const slack = 26 * time.Hour
	set, err := recurrence(c, s)
	if err != nil {
		return s.Add(-slack), time.Time{}
	}
	if set != nil {
		last := s
		for _, rule := range c.Props.Values(ical.PropRecurrenceRule) {
			up := strings.ToUpper(rule.Value)
			if !strings.Contains(up, "UNTIL=") && !strings.Contains(up, "COUNT=") {
				return s.Add(-slack), time.Time{}
			}
		}
		// Bounded: walk the instances (COUNT and UNTIL keep this finite),
		// taking a series longer than the budget as unbounded.
		it := set.Iterator()
		for {
			t, more, err := x.next(it)
			if err != nil {
				return s.Add(-slack), time.Time{}
			}
			if !more {
				break
			}
			if t.After(last) {
				last = t
			}
		}
		e = last.Add(e.Sub(s))
	}
	return s.Add(-slack), e.Add(slack)
}

// overlaps applies RFC 4791 §9.9 to one instance [s, e] and the query range
// [qs, qe) (zero bounds are unbounded): a zero-length instance matches when
// it lies in the range, a longer one when the spans overlap.
func overlaps(s, e, qs, qe time.Time) bool {
	if e.Before(s) {
		e = s
	}
	if e.Equal(s) {
		return (qs.IsZero() || !s.Before(qs)) && (qe.IsZero() || s.Before(qe))
	}
	return (qe.IsZero() || s.Before(qe)) && (qs.IsZero() || e.After(qs))
}

// matchTimeRange reports whether any instance of c overlaps [qs, qe). The
// instances are walked lazily in order, under the budget x, and the walk
// stops at the first that overlaps (RFC 4791 §9.9 asks for any) or that
// starts at or after qe.
func matchTimeRange(c *ical.Component, qs, qe time.Time, x *expansion) (bool, error) {
	s, e, ok := interval(c)
	if !ok {
		// RFC 4791 §9.9: a VTODO without dates matches every range; other
		// components without a start match none.
		return c.Name == ical.CompToDo, nil
	}
	set, err := recurrence(c, s)
	if err != nil {
		// An RRULE we cannot expand: the series could overlap if it starts
		// before the end of the range.
		return qe.IsZero() || s.Before(qe), nil
	}
	if set == nil {
		return overlaps(s, e, qs, qe), nil
	}
	dur := e.Sub(s)
	it := set.Iterator()
	for {
		t, more, err := x.next(it)
		if err != nil || !more {
			return false, err
		}
		if !qe.IsZero() && !t.Before(qe) {
			return false, nil
		}
		if overlaps(t, t.Add(dur), qs, qe) {
			return true, nil
		}
	}
}
