package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// figFlood: floodN clients keep logging in with wrong main passwords (each
// attempt from a new loopback address, as a botnet would, so that the per-IP
// delay never holds them back: the worst case for the server's argon2id),
// against members apart from those whose app-password logins are measured
// (a flood at the same accounts pauses them after 100 failures, by design).
// Measured: app-password IMAP logins at 16 clients without and during the
// flood, and the peak RSS of the server's processes.
func (b *bench) figFlood(ctx context.Context) error {
	half := b.cfg.members / 2
	good, bad := users(0, half), users(half, b.cfg.members)
	for r := 0; r < b.cfg.rounds; r++ {
		for _, p := range b.rotated(r) {
			if p.name == "null" {
				continue // accepts every password: there is no failure to flood with
			}
			addr := p.addr["imap"]
			before := runLoad(16, b.cfg.dur, loginCycle("imap", addr, good, b.workerIP))
			peak := peakSampler(p.pid())
			stopFlood := startFlood(addr, bad, b.cfg.floodN, b.nextIPs(1<<20))
			time.Sleep(time.Second) // let the flood fill the queues
			during := runLoad(16, b.cfg.dur, loginCycle("imap", addr, good, b.workerIP))
			pk := peak()
			floodRate := stopFlood()
			b.res.add("flood", "imap c=16", "cycles/s without", p.name, before.Rate)
			b.res.add("flood", "imap c=16", "cycles/s during", p.name, during.Rate)
			b.res.add("flood", "imap c=16", "during/without", p.name, during.Rate/max(before.Rate, 1e-9))
			b.res.add("flood", "imap c=16", "p99 ms during", p.name, during.P99)
			b.res.add("flood", "imap c=16", "peak RSS MiB", p.name, float64(pk.RSS)/(1<<20))
			b.res.add("flood", "imap c=16", "failed logins/s", p.name, floodRate)
			if during.Errors > 0 {
				b.res.note("flood", fmt.Sprintf("%s: %d app-password logins failed during the flood in round %d.", p.name, during.Errors, r+1))
			}
			time.Sleep(2 * time.Second) // let the server finish the abandoned attempts
		}
	}
	return nil
}

// startFlood starts n clients that log in to the IMAP server at addr with
// wrong main passwords of the members bad, each attempt from the next of
// 2^20 loopback addresses starting at first. stop ends the flood, waits for
// the clients and returns the failed logins per second while it ran.
func startFlood(addr string, bad []user, n, first int) (stop func() float64) {
	var halt atomic.Bool
	var attempts, seq atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !halt.Load(); i++ {
				u := bad[(w*31+i)%len(bad)]
				k := int(seq.Add(1)) % (1 << 20)
				if c, err := imapLogin(addr, srcIP(first+k), u.Email, wrongMain); err == nil {
					c.c.Close() // cannot happen: the password is wrong
				}
				attempts.Add(1)
			}
		}(w)
	}
	return func() float64 {
		halt.Store(true)
		rate := float64(attempts.Load()) / time.Since(start).Seconds()
		wg.Wait()
		return rate
	}
}
