package main

import (
	"context"
	"fmt"
	"time"
)

// figLogin: LOGIN+LOGOUT and USER/PASS/QUIT cycles per second with p50/p99
// at each concurrency, every target measured in turn within each round.
func (b *bench) figLogin(ctx context.Context) error {
	us := users(0, b.cfg.members)
	for _, p := range b.targets {
		// Every member logs in once by POP3 first: the first login creates
		// the mail account (Postern's default mailboxes, Dovecot's Maildir),
		// a write that later logins do not repeat.
		everyMemberOnce(us, func(w int, u user) { pop3Cycle(p.addr["pop3"], b.workerIP(w), u.Email, u.Pass) })
	}
	for _, p := range b.targets { // warm up: first connections, caches, page faults
		for _, proto := range []string{"imap", "pop3"} {
			runLoad(4, 300*time.Millisecond, loginCycle(proto, p.addr[proto], us, b.workerIP))
		}
	}
	for r := 0; r < b.cfg.rounds; r++ {
		for _, proto := range []string{"imap", "pop3"} {
			for _, c := range b.cfg.conc {
				for _, p := range b.rotated(r) {
					cpu0 := treeCPU(p.pid())
					res := runLoad(c, b.cfg.dur, loginCycle(proto, p.addr[proto], us, b.workerIP))
					cpu := treeCPU(p.pid()) - cpu0
					cas := concName(proto, c)
					if n := float64(res.Count); n > 0 {
						// CPU per cycle is the figure that the other loads of a
						// shared machine disturb least.
						b.res.add("login", cas, "server CPU µs/cycle", p.name, float64(cpu/time.Microsecond)/n)
					}
					b.res.add("login", cas, "cycles/s", p.name, res.Rate)
					b.res.add("login", cas, "p50 ms", p.name, res.P50)
					b.res.add("login", cas, "p99 ms", p.name, res.P99)
					if res.Errors > 0 {
						b.res.note("login", fmt.Sprintf("%s had %d failed cycles at %s in round %d.", p.name, res.Errors, cas, r+1))
					}
				}
			}
		}
	}
	return nil
}
