package davserver

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/postern/postern/internal/account"
)

// httpError is a reply with a status, a human message and, for WebDAV
// preconditions (RFC 4918 §16), the condition element of the DAV:error body.
type httpError struct {
	status    int
	message   string
	condition string // inner XML of DAV:error, e.g. `<C:valid-calendar-data/>`
}

func (e *httpError) Error() string { return e.message }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, message: fmt.Sprintf(format, args...)}
}

// precondition is a failed precondition or postcondition with its element.
func precondition(status int, condition, format string, args ...any) *httpError {
	return &httpError{status: status, message: fmt.Sprintf(format, args...), condition: condition}
}

// messageNS holds the human-readable message inside a DAV:error body.
const messageNS = "urn:postern:dav"

// fail writes err: an *httpError as it is, store errors by their code, and
// anything else as a logged 500 with a generic message.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		switch account.ErrorCode(err) {
		case account.ENOTFOUND:
			he = errorf(http.StatusNotFound, "Not found.")
		case account.ECONFLICT:
			he = errorf(http.StatusMethodNotAllowed, "%s", account.ErrorMessage(err))
		case account.EUNAVAILABLE:
			he = errorf(http.StatusServiceUnavailable, "The service is temporarily unavailable; try again later.")
		default:
			if r.Context().Err() != nil {
				// The client went away or the credential was revoked.
				return
			}
			h.log.Error("dav request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			he = errorf(http.StatusInternalServerError, "Internal error.")
		}
	}
	if he.condition == "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(he.status)
		fmt.Fprintln(w, he.message)
		return
	}
	var b strings.Builder
	b.WriteString(xmlHeader)
	b.WriteString(`<D:error` + nsAttrs + ` xmlns:P="` + messageNS + `">`)
	b.WriteString(he.condition)
	b.WriteString(`<P:message>`)
	b.WriteString(escape(he.message))
	b.WriteString(`</P:message></D:error>`)
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(he.status)
	w.Write([]byte(b.String()))
}
