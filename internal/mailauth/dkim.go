package mailauth

import (
	"bytes"
	"context"
	"errors"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// checkDKIM verifies the message's first MaxSignatures DKIM-Signature
// fields with go-msgauth, fetching keys through the configured resolver.
func (c *Checker) checkDKIM(ctx context.Context, msg []byte) []DKIMResult {
	// go-msgauth reports d= and i= but not s= or b=; the signatures are
	// taken in header order on both sides, so the i-th verification is the
	// i-th DKIM-Signature field.
	var sigs []string
	for _, f := range headerFields(msg) {
		if strings.EqualFold(f.name, "DKIM-Signature") {
			sigs = append(sigs, f.value(msg))
		}
	}
	if len(sigs) == 0 {
		return nil
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			return c.res.LookupTXT(ctx, name)
		},
		MaxVerifications: MaxSignatures,
	})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		// The header could not be read, or a verification failed in a way
		// go-msgauth does not classify (it then clears that signature's
		// error): no signature of this message counts as passing.
		return []DKIMResult{{Result: PermError, Reason: err.Error()}}
	}
	out := make([]DKIMResult, 0, len(verifs))
	for i, v := range verifs {
		if v == nil {
			continue
		}
		r := DKIMResult{Domain: normalizeDomain(v.Domain), Identifier: v.Identifier}
		if i < len(sigs) {
			r.Selector = tagValue(sigs[i], "s")
			r.SignaturePrefix = prefix(tagValue(sigs[i], "b"), 12)
		}
		switch e := v.Err; {
		case e == nil:
			r.Result = Pass
		case dkim.IsTempFail(e):
			r.Result, r.Reason = TempError, e.Error()
		case dkim.IsPermFail(e):
			r.Result, r.Reason = PermError, e.Error()
		default:
			r.Result, r.Reason = Fail, e.Error()
		}
		out = append(out, r)
	}
	return out
}

func prefix(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
