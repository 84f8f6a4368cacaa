package delivery

import (
	"strings"
	"sync"
	"testing"

	"github.com/postern/postern/internal/delivery/deliverytest"
)

// The most preferred MX host that accepts a connection gets the message:
// the first refuses connections (nothing listens), the second takes it, the
// third, less preferred, sees nothing.
func TestMXPreferenceAndFallback(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	dead, ip2, ip3 := newIP(), newIP(), newIP()
	mx2 := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip2})
	mx3 := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip3})
	// Listed out of order: the preference decides, not the order.
	dns.Add(t,
		"example.test. MX 30 mx3.example.test.",
		"example.test. MX 10 mx1.example.test.",
		"example.test. MX 20 mx2.example.test.",
		"mx1.example.test. A "+dead,
		"mx2.example.test. A "+ip2,
		"mx3.example.test. A "+ip3,
	)
	d, _ := newDeliverer(t, dns)
	res := deliver(t, d, msg("example.test", "bob@example.test"))
	wantDelivered(t, res)
	if res[0].RemoteMTA != "mx2.example.test" {
		t.Errorf("RemoteMTA %q, want mx2.example.test", res[0].RemoteMTA)
	}
	if n := len(mx2.Messages()); n != 1 {
		t.Fatalf("mx2 got %d messages, want 1", n)
	}
	if n := mx3.Accepts(); n != 0 {
		t.Errorf("mx3 (preference 30) was connected to %d times", n)
	}
	got := mx2.Messages()[0]
	if string(got.Data) != testBody {
		t.Errorf("message arrived as\n%q\nwant\n%q", got.Data, testBody)
	}
	if got.From != "alice@sender.test" || len(got.Rcpts) != 1 || got.Rcpts[0] != "bob@example.test" {
		t.Errorf("envelope %q %q", got.From, got.Rcpts)
	}
}

// A host's addresses are tried in turn; one address is never tried twice
// in an attempt even when two MX names share it.
func TestMXAddressesAndDuplicates(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	busy, live := newIP(), newIP()
	var mu sync.Mutex
	busyConns := 0
	rawServer(t, busy, func(c *rawConn) {
		mu.Lock()
		busyConns++
		mu.Unlock()
		c.send("421 4.3.2 Busy")
	})
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: live})
	dns.Add(t,
		"example.test. MX 10 a.example.test.",
		"example.test. MX 20 b.example.test.",
		"a.example.test. A "+busy,
		"b.example.test. A "+busy,
		"b.example.test. A "+live,
	)
	d, _ := newDeliverer(t, dns)
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if srv.Accepts() != 1 || len(srv.Messages()) != 1 {
		t.Fatalf("accepts %d, messages %d", srv.Accepts(), len(srv.Messages()))
	}
	mu.Lock()
	defer mu.Unlock()
	if busyConns != 1 {
		t.Fatalf("the shared address was connected to %d times", busyConns)
	}
}

// No MX: the domain's own address is the MX (RFC 5321 §5.1).
func TestImplicitMX(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip})
	dns.Add(t, "example.test. A "+ip)
	d, _ := newDeliverer(t, dns)
	res := deliver(t, d, msg("Example.Test.", "bob@example.test"))
	wantDelivered(t, res)
	if len(srv.Messages()) != 1 || res[0].RemoteMTA != "example.test" {
		t.Fatalf("messages %d, RemoteMTA %q", len(srv.Messages()), res[0].RemoteMTA)
	}
}

func TestNullMX(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip})
	// The domain has an address, which an implicit MX would use: the null
	// MX must stop delivery before that.
	dns.Add(t, "example.test. MX 0 .", "example.test. A "+ip)
	d, _ := newDeliverer(t, dns)
	res := deliver(t, d, msg("example.test", "bob@example.test", "carol@example.test"))
	wantFailed(t, res, true, "5.1.10")
	if srv.Accepts() != 0 {
		t.Errorf("a null MX domain was connected to")
	}
	if !strings.Contains(res[0].Text, "null MX") || res[0].Code != 0 || res[0].RemoteMTA != "" {
		t.Errorf("result %+v", res[0])
	}
}

func TestDNSFailures(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	dns.ServFail("broken.test")
	dns.Exists("bare.test")
	dns.Add(t, "nohost.test. MX 10 mx.nohost.test.")
	d, _ := newDeliverer(t, dns)

	res := deliver(t, d, msg("nowhere.test", "bob@nowhere.test"))
	wantFailed(t, res, true, "5.1.2")

	res = deliver(t, d, msg("broken.test", "bob@broken.test"))
	wantFailed(t, res, false, "4.4.3")

	// A domain that exists with neither MX nor address, and one whose only
	// MX host does not exist: nowhere to deliver, ever.
	wantFailed(t, deliver(t, d, msg("bare.test", "bob@bare.test")), true, "5.4.4")
	wantFailed(t, deliver(t, d, msg("nohost.test", "bob@nohost.test")), true, "5.4.4")
}

// Every MX refusing connections: a temporary failure to retry.
func TestAllMXUnreachable(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	dns.Add(t,
		"example.test. MX 10 mx1.example.test.",
		"example.test. MX 20 mx2.example.test.",
		"mx1.example.test. A "+newIP(),
		"mx2.example.test. A "+newIP(),
	)
	d, _ := newDeliverer(t, dns)
	res := deliver(t, d, msg("example.test", "bob@example.test"))
	wantFailed(t, res, false, "4.4.1")
	if !strings.Contains(res[0].Text, "connecting to mx2.example.test") {
		t.Errorf("text %q", res[0].Text)
	}
}

// Equal preferences are tried in random order, so both hosts get mail.
func TestEqualPreferenceShuffled(t *testing.T) {
	hosts := []mxHost{{"a", 10}, {"b", 10}, {"c", 20}}
	seen := map[string]bool{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		h := append([]mxHost(nil), hosts...)
		shuffleEqual(h)
		if h[2].name != "c" {
			t.Fatalf("shuffle moved a host across preferences: %v", h)
		}
		seen[h[0].name] = true
	}
	if len(seen) != 2 {
		t.Fatalf("the first host was always %v", seen)
	}
}

// We are an MX host of the domain: only more preferred hosts may be tried.
func TestMXLoopsToMyself(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	dns.Add(t, "example.test. MX 10 sender.test.", "example.test. MX 20 backup.example.test.",
		"backup.example.test. A "+newIP())
	d, _ := newDeliverer(t, dns)
	wantFailed(t, deliver(t, d, msg("example.test", "bob@example.test")), true, "5.4.6")
}
