package account

import (
	"errors"
	"fmt"
)

// Error codes, mapped to HTTP status and CLI exit in one place each (web, cmd).
const (
	EINVALID      = "invalid"      // the input breaks a rule; Message says which
	ENOTFOUND     = "not_found"    // no such domain, member, app password
	ECONFLICT     = "conflict"     // duplicate name, or the change is not allowed now
	ELIMIT        = "limit"        // the 5 app password limit
	EFORBIDDEN    = "forbidden"    // the policy or the setting does not allow it
	EUNAUTHORIZED = "unauthorized" // a login failed; never says why
	EUNAVAILABLE  = "unavailable"  // temporary: database down, account paused
	ENOTLOCAL     = "not_local"    // the address's domain is not served here: mail to it would be relayed
	EINTERNAL     = "internal"     // everything else; the client sees a generic message
)

// Error is an application error: Code and Message are safe to show a client;
// Err, the cause, is for logs only.
type Error struct {
	Code    string
	Message string
	// Reason tells apart the cases of one Code that a client words
	// differently, such as "empty" and "too_long" of an invalid name; "" when
	// the code says it all.
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// unavailableErr is the temporary failure of a store that did not answer.
func unavailableErr(err error) error {
	return &Error{Code: EUNAVAILABLE, Message: "Temporary failure, try again later.", Err: err}
}

// Errorf returns an *Error with a client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, EINTERNAL when err is not an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EINTERNAL
}

// ErrorReason returns the Reason of err, "" when it has none.
func ErrorReason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// withReason sets the Reason of e.
func (e *Error) withReason(reason string) *Error { e.Reason = reason; return e }

// ErrorMessage returns the client-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "Internal error."
}

// ErrNotFound is what stores return for a missing row; services give it context.
var ErrNotFound = &Error{Code: ENOTFOUND, Message: "Not found."}

// ErrAuthFailed is the one failure every login gets, whatever the reason.
var ErrAuthFailed = &Error{Code: EUNAUTHORIZED, Message: "Authentication failed."}

// authFailure wraps ErrAuthFailed with the reason, for logs and metrics only.
func authFailure(reason string) error {
	return &Error{Code: EUNAUTHORIZED, Message: ErrAuthFailed.Message, Err: errors.New(reason)}
}

// FailureReason returns the logged reason of a failed login ("unknown-user",
// "bad-password", "policy", "suspended"), or "" when err is no login failure.
func FailureReason(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code == EUNAUTHORIZED && e.Err != nil {
		return e.Err.Error()
	}
	return ""
}
