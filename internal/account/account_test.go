package account_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
)

func TestPolicyFor(t *testing.T) {
	tokyo := time.FixedZone("Asia/Tokyo", 9*3600)
	cut := account.DefaultCutoff
	if !cut.Equal(time.Date(2022, 10, 12, 15, 0, 0, 0, time.UTC)) {
		t.Fatalf("DefaultCutoff %v is not 2022-10-13 00:00 Asia/Tokyo", cut)
	}
	custom := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		created, cutoff time.Time
		want            account.Policy
	}{
		{time.Date(2022, 10, 12, 23, 59, 0, 0, tokyo), cut, account.PolicyOptional},
		{cut.Add(-time.Nanosecond), cut, account.PolicyOptional},
		{cut, cut, account.PolicyEnforced},
		{time.Date(2022, 10, 13, 0, 0, 0, 0, tokyo), cut, account.PolicyEnforced},
		{time.Date(2022, 10, 12, 20, 0, 0, 0, time.UTC), cut, account.PolicyEnforced},
		{time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), cut, account.PolicyOptional},
		{time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), custom, account.PolicyOptional},
		{custom, custom, account.PolicyEnforced},
	}
	for _, c := range cases {
		if got := account.PolicyFor(c.created, c.cutoff); got != c.want {
			t.Errorf("PolicyFor(%v, %v) = %s, want %s", c.created, c.cutoff, got, c.want)
		}
	}
}

func TestAppPasswordsOnly(t *testing.T) {
	old, recent := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		domainCreated time.Time
		setting, want bool
	}{
		{old, false, false},
		{old, true, true},
		{recent, false, true}, // enforced: the setting is ignored
		{recent, true, true},
	}
	for _, c := range cases {
		m := account.Member{Email: "alice@example.com", DomainCreatedAt: c.domainCreated, UseAppPasswords: c.setting}
		if got := m.AppPasswordsOnly(account.DefaultCutoff); got != c.want {
			t.Errorf("domain %v, setting %v: %v, want %v", c.domainCreated, c.setting, got, c.want)
		}
	}
	m := account.Member{Email: "alice@example.com"}
	if m.Local() != "alice" || m.Domain() != "example.com" {
		t.Errorf("Local %q Domain %q", m.Local(), m.Domain())
	}
}

func TestErrors(t *testing.T) {
	conflict := account.Errorf(account.ECONFLICT, "The domain %s already exists.", "example.com")
	wrapped := fmt.Errorf("store: %w", conflict)
	cases := []struct {
		err       error
		code, msg string
	}{
		{nil, "", "Internal error."},
		{conflict, account.ECONFLICT, "The domain example.com already exists."},
		{wrapped, account.ECONFLICT, "The domain example.com already exists."},
		{errors.New("pq: connection refused at 10.0.0.5"), account.EINTERNAL, "Internal error."},
		{&account.Error{Code: account.EINTERNAL, Message: "secret detail"}, account.EINTERNAL, "Internal error."},
		{fmt.Errorf("member: %w", account.ErrNotFound), account.ENOTFOUND, "Not found."},
	}
	for _, c := range cases {
		if got := account.ErrorCode(c.err); got != c.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", c.err, got, c.code)
		}
		if got := account.ErrorMessage(c.err); got != c.msg {
			t.Errorf("ErrorMessage(%v) = %q, want %q", c.err, got, c.msg)
		}
	}
	if account.FailureReason(conflict) != "" || account.FailureReason(account.ErrAuthFailed) != "" {
		t.Errorf("FailureReason of a non-login error")
	}
}
