package davserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/teambition/rrule-go"
)

// Limits of recurrence expansion. A series without end (RRULE:FREQ=SECONDLY)
// has no natural bound, so every walk over instances is lazy (it stops at the
// first instance that answers the question) and counted.
const (
	// DefaultMaxInstances is the most recurrence instances examined for
	// one calendar object in one request: an hourly series can be queried
	// eleven years after its start, a daily one for ever.
	DefaultMaxInstances = 100_000
	// DefaultMaxQueryInstances is the most examined for one request, over
	// all objects.
	DefaultMaxQueryInstances = 1_000_000
	// DefaultMaxExpansionTime bounds the time one request spends expanding
	// recurrences. rrule-go scans day by day, without returning, for a
	// rule whose day filters match no day (FREQ=DAILY;BYMONTH=2;
	// BYMONTHDAY=30 searches to the year 9999: about 0.1 to 0.4 s), which
	// the instance counts cannot see.
	DefaultMaxExpansionTime = 3 * time.Second
)

// Why an expansion stopped.
var (
	errObjectInstances = errors.New("object instance limit")
	errQueryInstances  = errors.New("request instance limit")
	errExpansionTime   = errors.New("expansion time limit")
)

// expansion is the recurrence budget of one request (a calendar-query) or
// of one object (a PUT computing its index bounds).
type expansion struct {
	ctx       context.Context
	deadline  time.Time
	perObject int
	object    int // instances examined for the current object
	left      int // instances left for the request
}

func (h *handler) newExpansion(ctx context.Context) *expansion {
	return &expansion{ctx: ctx, deadline: time.Now().Add(h.maxExpansionTime), perObject: h.maxInstances, left: h.maxQueryInstances}
}

// startObject begins counting for the next object; it fails when the
// request is cancelled or out of time.
func (x *expansion) startObject() error {
	x.object = 0
	return x.checkTime()
}

func (x *expansion) checkTime() error {
	if err := x.ctx.Err(); err != nil {
		return err
	}
	if time.Now().After(x.deadline) {
		return errExpansionTime
	}
	return nil
}

// step counts one examined instance.
func (x *expansion) step() error {
	x.object++
	x.left--
	switch {
	case x.object > x.perObject:
		return errObjectInstances
	case x.left < 0:
		return errQueryInstances
	case x.object%1024 == 0:
		return x.checkTime()
	}
	return nil
}

// next calls it under the budget: ok is false at the end of the series.
func (x *expansion) next(it func() (time.Time, bool)) (t time.Time, ok bool, err error) {
	t, ok = it()
	if !ok {
		return t, false, x.checkTime()
	}
	return t, true, x.step()
}

// tooExpensive is the reply to a calendar-query stopped by a limit:
// CALDAV:max-instances (RFC 4791 §5.2.8), the condition of an object whose
// recurrence set is larger than the server handles. Any other error (a
// cancelled request) is returned as it is.
func (h *handler) tooExpensive(err error, name string) error {
	const cond = `<C:max-instances/>`
	switch {
	case errors.Is(err, errObjectInstances):
		return precondition(http.StatusForbidden, cond,
			"The object %s recurs too often: more than %d of its instances would have to be examined to answer this time range. Query a range closer to its start, or give the series an end.", name, h.maxInstances)
	case errors.Is(err, errQueryInstances):
		return precondition(http.StatusForbidden, cond,
			"This query would examine more than %d recurrence instances in total. Query a shorter time range.", h.maxQueryInstances)
	case errors.Is(err, errExpansionTime):
		return precondition(http.StatusForbidden, cond,
			"Expanding the recurrences for this query took longer than %v (object %s). Query a shorter time range.", h.maxExpansionTime, name)
	}
	return err
}

// checkRule makes a parsed RRULE safe for rrule-go's iterator. Repeated BY
// values are dropped: the iterator looks values up by linear search for
// every candidate, and a 1 MiB object could hold a list of 300,000 of them.
// BYEASTER (not iCalendar) is refused. A rule whose INTERVAL never reaches
// its BYHOUR/BYMINUTE/BYSECOND values (FREQ=SECONDLY;INTERVAL=2;BYSECOND=1
// from an even second) is refused: the iterator would search for ever.
func checkRule(opt *rrule.ROption, start time.Time) error {
	if len(opt.Byeaster) > 0 {
		return fmt.Errorf("BYEASTER is not an iCalendar rule part")
	}
	for _, l := range []*[]int{&opt.Bysetpos, &opt.Bymonth, &opt.Bymonthday, &opt.Byyearday, &opt.Byweekno, &opt.Byhour, &opt.Byminute, &opt.Bysecond} {
		*l = dedupe(*l)
	}
	opt.Byweekday = dedupe(opt.Byweekday)
	if !timeReachable(*opt, start) {
		return errUnreachable
	}
	return nil
}

var errUnreachable = errors.New("the RRULE's INTERVAL never reaches its BYHOUR, BYMINUTE or BYSECOND values, so it has no instance after DTSTART")

func dedupe[T comparable](l []T) []T {
	seen := make(map[T]bool, len(l))
	out := l[:0]
	for _, v := range l {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// timeReachable reports whether an HOURLY, MINUTELY or SECONDLY rule can
// step onto a time of day its BYHOUR/BYMINUTE/BYSECOND allow. rrule-go
// advances such a rule by INTERVAL units, across days, until they match: the
// units of the day it reaches are those congruent to DTSTART's modulo
// gcd(INTERVAL, units per day). Other frequencies combine the lists
// directly.
func timeReachable(opt rrule.ROption, start time.Time) bool {
	var unit int
	switch opt.Freq {
	case rrule.HOURLY:
		unit = 3600
	case rrule.MINUTELY:
		unit = 60
	case rrule.SECONDLY:
		unit = 1
	default:
		return true
	}
	perDay := 86400 / unit
	g := gcd(max(opt.Interval, 1), perDay)
	h, m, s := start.Clock()
	first := (h*3600 + m*60 + s) / unit % g
	allows := func(list []int, v int) bool { return len(list) == 0 || slices.Contains(list, v) }
	for p := first; p < perDay; p += g {
		sec := p * unit
		if allows(opt.Byhour, sec/3600) &&
			(unit > 60 || allows(opt.Byminute, sec/60%60)) &&
			(unit > 1 || allows(opt.Bysecond, sec%60)) {
			return true
		}
	}
	return false
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
