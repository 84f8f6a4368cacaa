package mailauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/postern/postern/internal/mailauth/mailauthtest"
)

// client is the SMTP client's address in every test; only SPF records
// mention it, no traffic goes there.
var client = netip.MustParseAddr("192.0.2.10")

var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func keys(t testing.TB) {
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

// rsaRecord and edRecord are the DKIM key records (RFC 6376 §3.6.1,
// RFC 8463 §4.2) of the test keys.
func rsaRecord(t testing.TB) string {
	keys(t)
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
}

func edRecord(t testing.TB) string {
	keys(t)
	return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edKey.Public().(ed25519.PublicKey))
}

// sign returns msg with a DKIM-Signature of domain/selector prepended.
func sign(t testing.TB, msg, domain, selector string, key crypto.Signer) string {
	t.Helper()
	var b bytes.Buffer
	err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{
		Domain: domain, Selector: selector, Signer: key,
		HeaderKeys: []string{"From", "To", "Subject", "Date"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func message(from string) string {
	return "From: " + from + "\r\nTo: bob@example.net\r\nSubject: hello\r\n" +
		"Date: Wed, 02 Dec 2026 08:00:00 +0000\r\n\r\nHello Bob.\r\n"
}

// env is a loopback DNS server and a Checker that asks it.
type env struct {
	dns *mailauthtest.Server
	c   *Checker
}

func newEnv(t testing.TB) *env {
	t.Helper()
	s := mailauthtest.Start(t)
	r, err := ParseResolver(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return &env{dns: s, c: New(Config{Resolver: r, AuthServID: "mx.postern.test",
		LookupTimeout: 300 * time.Millisecond})}
}

func (e *env) check(mailFrom, msg string) Result {
	return e.c.Check(context.Background(), Input{RemoteIP: client, Helo: "client.helo.test",
		MailFrom: mailFrom, Message: []byte(msg)})
}

func TestSPF(t *testing.T) {
	e := newEnv(t)
	var eleven, ten, three, two []string
	for i := 1; i <= 11; i++ {
		h := fmt.Sprintf("h%d.lim.test", i)
		e.dns.Add(t, h+". A 198.51.100.1")
		eleven = append(eleven, "a:"+h)
		if i <= 10 {
			ten = append(ten, "a:"+h)
		}
	}
	for i := 1; i <= 3; i++ {
		three = append(three, fmt.Sprintf("a:v%d.void.test", i))
		if i <= 2 {
			two = append(two, fmt.Sprintf("a:v%d.void.test", i))
		}
	}
	e.dns.Add(t,
		`pass.test. TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`fail.test. TXT "v=spf1 ip4:198.51.100.1 -all"`,
		`soft.test. TXT "v=spf1 ip4:198.51.100.1 ~all"`,
		`neutral.test. TXT "v=spf1 ?all"`,
		`norecord.test. TXT "just some text"`,
		`twice.test. TXT "v=spf1 -all"`, `twice.test. TXT "v=spf1 +all"`,
		`mx.test. TXT "v=spf1 mx -all"`, `mx.test. MX 10 mail.mx.test.`, `mail.mx.test. A 192.0.2.10`,
		`include.test. TXT "v=spf1 include:pass.test -all"`,
		`client.helo.test. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`v1.void.test. TXT "not an address"`,
	)
	e.dns.TXT(t, "lim11.test", "v=spf1 "+strings.Join(eleven, " ")+" -all")
	e.dns.TXT(t, "lim10.test", "v=spf1 "+strings.Join(ten, " ")+" -all")
	e.dns.TXT(t, "void3.test", "v=spf1 "+strings.Join(three, " ")+" -all")
	e.dns.TXT(t, "void2.test", "v=spf1 "+strings.Join(two, " ")+" -all")
	e.dns.ServFail("servfail.test")
	e.dns.Drop("silent.test")

	for _, tc := range []struct {
		mailFrom string
		want     Value
	}{
		{"a@pass.test", Pass},
		{"a@PASS.test.", Pass},
		{"a@fail.test", Fail},
		{"a@soft.test", SoftFail},
		{"a@neutral.test", Neutral},
		{"a@norecord.test", None},
		{"a@nxdomain.test", None},
		{"a@mx.test", Pass},
		{"a@include.test", Pass},
		{"a@twice.test", PermError},
		{"a@lim10.test", Fail},      // 10 lookups: within the limit
		{"a@lim11.test", PermError}, // 11 lookups: RFC 7208 §4.6.4
		{"a@void2.test", Fail},      // 2 void lookups allowed
		{"a@void3.test", PermError}, // the third is one too many
		{"a@servfail.test", TempError},
		{"a@silent.test", TempError}, // no answer within the lookup timeout
		{"a@[192.0.2.10]", None},
	} {
		r := e.check(tc.mailFrom, message("a@example.net"))
		if r.SPF.Result != tc.want || r.SPF.Helo {
			t.Errorf("MAIL FROM %s: spf=%s (helo %v, %s), want %s", tc.mailFrom, r.SPF.Result, r.SPF.Helo, r.SPF.Reason, tc.want)
		}
	}

	// The null reverse-path: the HELO name is checked (RFC 7208 §2.3).
	r := e.check("", message("MAILER-DAEMON@client.helo.test"))
	if r.SPF.Result != Pass || !r.SPF.Helo || r.SPF.Domain != "client.helo.test" {
		t.Errorf("MAIL FROM <>: %+v", r.SPF)
	}
	if !strings.Contains(string(r.Header), "spf=pass smtp.helo=client.helo.test") {
		t.Errorf("MAIL FROM <>: header %q", r.Header)
	}
}

func TestDKIM(t *testing.T) {
	e := newEnv(t)
	keys(t)
	e.dns.TXT(t, "rsa._domainkey.dk.test", rsaRecord(t))
	e.dns.TXT(t, "ed._domainkey.dk.test", edRecord(t))
	e.dns.TXT(t, "wrong._domainkey.dk.test", edRecord(t)) // not the key that signs below
	e.dns.ServFail("down._domainkey.dk.test")
	msg := message("alice@dk.test")
	rsaSigned := sign(t, msg, "dk.test", "rsa", rsaKey)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)

	for _, tc := range []struct {
		name string
		msg  string
		want []Value
	}{
		{"rsa", rsaSigned, []Value{Pass}},
		{"ed25519", sign(t, msg, "dk.test", "ed", edKey), []Value{Pass}},
		{"body altered", strings.Replace(rsaSigned, "Hello Bob.", "Hello Bob!", 1), []Value{Fail}},
		{"header altered", strings.Replace(rsaSigned, "Subject: hello", "Subject: pay now", 1), []Value{Fail}},
		{"key missing", sign(t, msg, "dk.test", "nokey", rsaKey), []Value{PermError}},
		{"key unreachable", sign(t, msg, "dk.test", "down", rsaKey), []Value{TempError}},
		{"two, one good", sign(t, sign(t, msg, "dk.test", "ed", edKey), "dk.test", "wrong", otherPriv),
			[]Value{Fail, Pass}},
		{"unsigned", msg, nil},
		{"header never ends", strings.SplitN(rsaSigned, "\r\n\r\n", 2)[0] + "\r\n", []Value{PermError}},
	} {
		r := e.check("alice@dk.test", tc.msg)
		var got []Value
		for _, d := range r.DKIM {
			got = append(got, d.Result)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: dkim %v (%+v), want %v", tc.name, got, r.DKIM, tc.want)
		}
	}

	r := e.check("alice@dk.test", sign(t, sign(t, msg, "dk.test", "ed", edKey), "dk.test", "wrong", otherPriv))
	if len(r.DKIM) != 2 || r.DKIM[0].Selector != "wrong" || r.DKIM[1].Selector != "ed" {
		t.Errorf("two signatures: %+v", r.DKIM)
	}
	r = e.check("alice@dk.test", rsaSigned)
	d := r.DKIM[0]
	if d.Domain != "dk.test" || d.Selector != "rsa" || d.Identifier != "@dk.test" || len(d.SignaturePrefix) != 12 {
		t.Errorf("rsa signature: %+v", d)
	}
	want := "\tdkim=pass header.b=" + d.SignaturePrefix + " header.d=dk.test header.i=@dk.test header.s=rsa;\r\n"
	if !strings.Contains(string(r.Header), want) {
		t.Errorf("header %q lacks %q", r.Header, want)
	}
}

// A message with a thousand signatures costs at most MaxSignatures key
// lookups.
func TestDKIMSignatureBound(t *testing.T) {
	e := newEnv(t)
	keys(t)
	e.dns.TXT(t, "rsa._domainkey.dk.test", rsaRecord(t))
	signed := sign(t, message("alice@dk.test"), "dk.test", "rsa", rsaKey)
	sig, rest, _ := strings.Cut(signed, "\r\nFrom:")
	msg := strings.Repeat(sig+"\r\n", 1000) + "From:" + rest
	r := e.check("alice@dk.test", msg)
	if len(r.DKIM) != MaxSignatures || r.DKIM[0].Result != Pass {
		t.Errorf("%d results, first %+v", len(r.DKIM), r.DKIM[0])
	}
	if n := e.dns.Queries("rsa._domainkey.dk.test"); n != MaxSignatures {
		t.Errorf("%d key lookups, want %d", n, MaxSignatures)
	}
}
