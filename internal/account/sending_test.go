package account_test

import (
	"testing"

	"github.com/postern/postern/internal/account"
)

// Over: sent plus pending plus what is asked must stay within each cap (0
// is none); day caps are named before hour caps, an app password's before
// its member's; an app password's caps and usage do not touch a
// main-password login.
func TestSendBudgetOver(t *testing.T) {
	limits := account.SendLimits{
		Member:      account.SendCaps{MessagesPerHour: 10, MessagesPerDay: 20, RecipientsPerHour: 0, RecipientsPerDay: 50},
		AppPassword: account.SendCaps{MessagesPerHour: 5, MessagesPerDay: 8, RecipientsPerHour: 7, RecipientsPerDay: 0},
	}
	tally := func(m, r int) account.SendTally { return account.SendTally{Messages: m, Recipients: r} }
	usage := func(h, d account.SendTally) account.SendUsage { return account.SendUsage{Hour: h, Day: d} }
	for _, c := range []struct {
		name       string
		app        bool
		sent       account.SendCounts
		pending    account.SendPending
		msgs, rcpt int
		want       *account.SendLimit
	}{
		{"fits", true, account.SendCounts{AppPassword: usage(tally(4, 6), tally(7, 6))}, account.SendPending{}, 1, 0, nil},
		{"app hour", true, account.SendCounts{AppPassword: usage(tally(5, 0), tally(5, 0))}, account.SendPending{}, 1, 0,
			&account.SendLimit{AppPassword: true, Max: 5}},
		{"pending counts", true, account.SendCounts{AppPassword: usage(tally(3, 0), tally(3, 0))}, account.SendPending{AppPassword: tally(2, 0)}, 1, 0,
			&account.SendLimit{AppPassword: true, Max: 5}},
		{"app day before app hour", true, account.SendCounts{AppPassword: usage(tally(5, 0), tally(8, 0))}, account.SendPending{}, 1, 0,
			&account.SendLimit{AppPassword: true, Day: true, Max: 8}},
		{"member day before app hour", true, account.SendCounts{Member: usage(tally(0, 0), tally(20, 0)), AppPassword: usage(tally(5, 0), tally(5, 0))}, account.SendPending{}, 1, 0,
			&account.SendLimit{Day: true, Max: 20}},
		{"recipients only when asked", true, account.SendCounts{AppPassword: usage(tally(0, 7), tally(0, 7))}, account.SendPending{}, 1, 0, nil},
		{"app recipients hour", true, account.SendCounts{AppPassword: usage(tally(0, 6), tally(0, 6))}, account.SendPending{AppPassword: tally(0, 1)}, 0, 1,
			&account.SendLimit{AppPassword: true, Recipients: true, Max: 7}},
		{"no cap is none", true, account.SendCounts{Member: usage(tally(0, 1000), tally(0, 49)), AppPassword: usage(tally(0, 0), tally(0, 1000))}, account.SendPending{}, 0, 1, nil},
		{"member recipients day", false, account.SendCounts{Member: usage(tally(0, 0), tally(0, 50))}, account.SendPending{}, 0, 1,
			&account.SendLimit{Recipients: true, Day: true, Max: 50}},
		{"main password: app caps do not apply", false, account.SendCounts{AppPassword: usage(tally(9, 9), tally(9, 9))}, account.SendPending{AppPassword: tally(9, 9)}, 1, 1, nil},
		{"main password: member hour", false, account.SendCounts{Member: usage(tally(9, 0), tally(9, 0))}, account.SendPending{Member: tally(1, 0)}, 1, 0,
			&account.SendLimit{Max: 10}},
	} {
		b := account.SendBudget{Limits: limits, AppPassword: c.app, Sent: c.sent}
		got := b.Over(c.pending, c.msgs, c.rcpt)
		if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	if s := (account.SendLimit{AppPassword: true, Recipients: true, Day: true, Max: 1500}).String(); s != "1500 recipients a day per third-party app password" {
		t.Errorf("String %q", s)
	}
}
