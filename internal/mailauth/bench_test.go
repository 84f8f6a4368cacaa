package mailauth

import (
	"context"
	"strings"
	"testing"
)

// BenchmarkCheck is one message's full check against the loopback DNS
// server: SPF pass (one TXT lookup), an RSA-2048 DKIM signature (one key
// lookup and a verification) and DMARC pass (one record lookup), on a
// message of about 10 KiB.
func BenchmarkCheck(b *testing.B) {
	e := newEnv(b)
	keys(b)
	e.dns.Add(b, `bank.test. TXT "v=spf1 ip4:192.0.2.0/24 -all"`, `_dmarc.bank.test. TXT "v=DMARC1; p=reject"`)
	e.dns.TXT(b, "rsa._domainkey.bank.test", rsaRecord(b))
	body := strings.Repeat("0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 01234\r\n", 140)
	msg := []byte(sign(b, strings.Replace(message("ceo@bank.test"), "Hello Bob.\r\n", body, 1), "bank.test", "rsa", rsaKey))
	in := Input{RemoteIP: client, Helo: "mta.bank.test", MailFrom: "ceo@bank.test", Message: msg}
	if r := e.c.Check(context.Background(), in); r.DMARC.Result != Pass || r.SPF.Result != Pass {
		b.Fatalf("%+v", r)
	}
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for b.Loop() {
		e.c.Check(context.Background(), in)
	}
}

// BenchmarkStripAuthResults runs on a 10 KiB message with two fields to
// remove.
func BenchmarkStripAuthResults(b *testing.B) {
	msg := []byte("Received: from a\r\n\tby b\r\nAuthentication-Results: x;\r\n spf=pass\r\nFrom: a@b.test\r\n" +
		"Authentication-Results: y; dkim=pass\r\nSubject: s\r\n\r\n" + strings.Repeat("x", 10<<10))
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		StripAuthResults(msg)
	}
}
