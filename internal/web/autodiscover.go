package web

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/postern/postern/internal/account"
)

// Autodiscover's XML namespaces (Outlook's "POX" Autodiscover, [MS-OXDSCLI]).
const (
	autodiscoverNS        = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	autodiscoverOutlookNS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)

// autodiscoverRequest is what Outlook (and eM Client, and others that
// borrowed it) POSTs to /autodiscover/autodiscover.xml.
type autodiscoverRequest struct {
	Request struct {
		EMailAddress             string
		AcceptableResponseSchema string
	}
}

// autodiscover answers Outlook's Autodiscover with the IMAP, POP3 and SMTP
// settings of an email account: Outlook asks autodiscover.<domain> (or the
// host of the _autodiscover._tcp SRV record) before any other source. Like
// autoconfig it holds no secret and answers every well-formed address of
// any domain alike, so it tells nobody which members exist. Exchange's own
// protocols (ActiveSync's mobilesync schema, EWS) are not spoken here: such
// a request gets the schema's "not available" error, and the client moves
// on to IMAP.
func (s *Server) autodiscover(w http.ResponseWriter, r *http.Request) {
	var req autodiscoverRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err == nil {
		err = xml.Unmarshal(body, &req)
	}
	email, perr := account.ParseEmail(req.Request.EMailAddress)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case r.Method != http.MethodPost || err != nil || perr != nil:
		writeAutodiscoverError(w, "600", "Invalid Request")
		return
	case req.Request.AcceptableResponseSchema != "" && req.Request.AcceptableResponseSchema != autodiscoverOutlookNS:
		writeAutodiscoverError(w, "601", "Provider is not available")
		return
	}
	set := s.serverSettings(r)
	var b bytes.Buffer
	fmt.Fprintf(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"%s\">\n  <Response xmlns=\"%s\">\n"+
		"    <User>\n      <EMailAddress>%s</EMailAddress>\n    </User>\n    <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n",
		autodiscoverNS, autodiscoverOutlookNS, xmlText(email))
	// Outlook takes the first protocol of each type: implicit TLS first
	// (RFC 8314), STARTTLS ("TLS" in this schema) when that is all there is.
	proto := func(typ string, implicit, starttls int) {
		port, enc := implicit, "SSL"
		if port == 0 {
			port, enc = starttls, "TLS"
		}
		if port == 0 {
			return
		}
		fmt.Fprintf(&b, "      <Protocol>\n        <Type>%s</Type>\n        <Server>%s</Server>\n        <Port>%d</Port>\n"+
			"        <DomainRequired>off</DomainRequired>\n        <LoginName>%s</LoginName>\n        <SPA>off</SPA>\n"+
			"        <SSL>on</SSL>\n        <Encryption>%s</Encryption>\n        <AuthRequired>on</AuthRequired>\n",
			typ, xmlText(set.Host), port, xmlText(email), enc)
		if typ == "SMTP" {
			b.WriteString("        <UsePOPAuth>off</UsePOPAuth>\n        <SMTPLast>off</SMTPLast>\n")
		}
		b.WriteString("      </Protocol>\n")
	}
	proto("IMAP", set.IMAPSPort, set.IMAPPort)
	proto("POP3", set.POP3SPort, set.POP3Port)
	proto("SMTP", set.SubmissionsPort, set.SubmissionPort)
	b.WriteString("    </Account>\n  </Response>\n</Autodiscover>\n")
	w.Write(b.Bytes())
}

func writeAutodiscoverError(w http.ResponseWriter, code, msg string) {
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"%s\">\n  <Response>\n"+
		"    <Error Time=\"%s\" Id=\"0\">\n      <ErrorCode>%s</ErrorCode>\n      <Message>%s</Message>\n      <DebugData />\n    </Error>\n"+
		"  </Response>\n</Autodiscover>\n", autodiscoverNS, time.Now().UTC().Format("15:04:05.0000000"), code, xmlText(msg))
}
