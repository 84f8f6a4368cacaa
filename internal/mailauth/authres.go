package mailauth

import (
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-msgauth/authres"
)

// maxValue bounds one value written into the header; reasons come from
// library errors that may quote names taken from the message.
const maxValue = 200

// header builds the Authentication-Results field (RFC 8601): one method
// result per folded line, formatted by go-msgauth's authres.
func (c *Checker) header(r Result) []byte {
	var results []authres.Result
	spfRes := &authres.SPFResult{Value: authres.ResultValue(r.SPF.Result), Reason: clean(r.SPF.Reason)}
	if r.SPF.Helo {
		spfRes.Helo = clean(r.SPF.Domain)
	} else {
		spfRes.From = clean(r.SPF.Domain)
	}
	results = append(results, spfRes)
	if len(r.DKIM) == 0 {
		results = append(results, &authres.DKIMResult{Value: authres.ResultNone})
	}
	for _, d := range r.DKIM {
		// authres.DKIMResult has no header.s or header.b (RFC 6008), so
		// the generic form carries them.
		results = append(results, &authres.GenericResult{
			Method: "dkim",
			Value:  authres.ResultValue(d.Result),
			Params: map[string]string{
				"reason":   clean(d.Reason),
				"header.d": clean(d.Domain),
				"header.i": clean(d.Identifier),
				"header.s": clean(d.Selector),
				"header.b": clean(d.SignaturePrefix),
			},
		})
	}
	results = append(results, &authres.DMARCResult{
		Value:  authres.ResultValue(r.DMARC.Result),
		Reason: clean(r.DMARC.Reason),
		From:   clean(r.DMARC.From),
	})

	var b strings.Builder
	b.WriteString("Authentication-Results: ")
	b.WriteString(clean(c.id))
	for _, res := range results {
		// Format of one result is "; method=value params"; each goes on a
		// line of its own so that no line grows past what a reader accepts.
		b.WriteString(";\r\n\t")
		b.WriteString(strings.TrimSpace(strings.TrimPrefix(authres.Format("", []authres.Result{res}), "; ")))
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// clean makes a value safe inside a header field: no control characters
// (no CR or LF to end the field early), no backslash to end a quoted
// string early, valid UTF-8, bounded length.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		if r == '\\' {
			// authres quotes a reason but does not escape backslashes.
			return '/'
		}
		return r
	}, s)
	if len(s) > maxValue {
		s = s[:maxValue]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}
