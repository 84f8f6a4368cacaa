package delivery

import (
	"context"
	"testing"

	"github.com/postern/postern/internal/delivery/deliverytest"
)

// BenchmarkDeliver: messages to one domain's MX on loopback, 4 at a time
// over pooled connections, DNS lookups included.
func BenchmarkDeliver(b *testing.B) {
	dns := deliverytest.StartDNS(b)
	ip := newIP()
	deliverytest.StartSMTP(b, deliverytest.SMTPOptions{IP: ip})
	dns.Add(b, "example.test. MX 10 mx.example.test.", "mx.example.test. A "+ip)
	d := New(Config{Hostname: "sender.test", Resolver: dns.Addr})
	defer d.Close()
	m := msg("example.test", "bob@example.test")
	b.SetParallelism(2) // 2 × GOMAXPROCS goroutines, at most 4 deliveries at once
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := d.Deliver(context.Background(), m); !r[0].Delivered {
				b.Fatal(r[0].Diagnostic())
			}
		}
	})
}
