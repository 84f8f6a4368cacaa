package davserver

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"
)

func TestCheckRule(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	opt, err := rrule.StrToROptionInLocation("FREQ=MINUTELY;BYSECOND=0"+strings.Repeat(",0,1", 1000)+";BYDAY=MO,MO,TU", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkRule(opt, start); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(opt.Bysecond, []int{0, 1}) || len(opt.Byweekday) != 2 {
		t.Fatalf("not deduplicated: %v %v", opt.Bysecond, opt.Byweekday)
	}
	for rule, ok := range map[string]bool{
		"FREQ=SECONDLY;INTERVAL=2;BYSECOND=1":            false,
		"FREQ=SECONDLY;INTERVAL=2;BYSECOND=3,4":          true,
		"FREQ=SECONDLY;INTERVAL=86400;BYHOUR=1":          false,
		"FREQ=SECONDLY;INTERVAL=86401;BYHOUR=1":          true, // drifts a second a day
		"FREQ=MINUTELY;INTERVAL=60;BYMINUTE=1":           false,
		"FREQ=MINUTELY;INTERVAL=60;BYMINUTE=0;BYHOUR=23": true,
		"FREQ=HOURLY;INTERVAL=5;BYHOUR=7":                true,
		"FREQ=HOURLY;INTERVAL=4;BYHOUR=7":                false,
		"FREQ=DAILY;INTERVAL=2;BYHOUR=7":                 true, // the hours come from the list
		"FREQ=YEARLY;BYEASTER=1":                         false,
	} {
		opt, err := rrule.StrToROptionInLocation(rule, time.UTC)
		if err != nil {
			t.Fatal(rule, err)
		}
		if err := checkRule(opt, start); (err == nil) != ok {
			t.Errorf("%s: %v, want ok=%v", rule, err, ok)
		}
	}
}

// A stored object with a rule refused since (or inserted another way) is
// matched without walking it: the iterator would never return.
func TestMatchUnreachableRule(t *testing.T) {
	c := ical.NewComponent(ical.CompEvent)
	c.Props.Set(&ical.Prop{Name: ical.PropDateTimeStart, Params: ical.Params{}, Value: "20300101T000000Z"})
	c.Props.Set(&ical.Prop{Name: ical.PropRecurrenceRule, Params: ical.Params{}, Value: "FREQ=SECONDLY;INTERVAL=2;BYSECOND=1"})
	x := &expansion{ctx: context.Background(), deadline: time.Now().Add(time.Minute), perObject: 10, left: 10}
	qs := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	done := make(chan bool)
	go func() {
		ok, _ := matchTimeRange(c, qs, qs.Add(time.Hour), x)
		done <- ok
	}()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("an unexpandable series starting before the range must match")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("matchTimeRange did not return")
	}
}
