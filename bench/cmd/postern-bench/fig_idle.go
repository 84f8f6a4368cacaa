package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// idleSet is a set of connections sitting in IDLE.
type idleSet struct {
	conns []*conn
}

func (s *idleSet) close() {
	for _, c := range s.conns {
		c.c.Close()
	}
	s.conns = nil
}

// openIdle opens n IDLE connections to addr with 64 openers, each connection
// from its own loopback address (first + k).
func openIdle(addr string, us []user, n, first int) (*idleSet, error) {
	s := &idleSet{conns: make([]*conn, n)}
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= n {
					return
				}
				u := us[k%len(us)]
				var c *conn
				var err error
				for try := 0; try < 3; try++ {
					if c, _, err = idle(addr, srcIP(first+k), u.Email, u.Pass); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", k, err)
					}
					mu.Unlock()
					return
				}
				s.conns[k] = c
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		for _, c := range s.conns {
			if c != nil {
				c.c.Close()
			}
		}
		return nil, firstErr
	}
	return s, nil
}

// figIdle: memory of each server's processes with N authenticated IMAP
// connections in IDLE, and per connection above the server's idle baseline.
func (b *bench) figIdle(ctx context.Context) error {
	us := users(0, b.cfg.members)
	rounds := min(b.cfg.rounds, 3)
	for r := 0; r < rounds; r++ {
		for _, p := range append(b.rotated(r), b.idleOnly...) {
			settle, step := 2*time.Second, time.Second
			if isDovecot(p) {
				settle = 4 * time.Second // imap-hibernate takes connections after imap_hibernate_timeout
			}
			if b.cfg.quick {
				settle, step = settle/4, step/5
			}
			time.Sleep(settle)
			// The baseline is the server's before its first idle connection
			// of the run: a Go server keeps the heap of a round's connections
			// after they close (it is reused by the next round), so a later
			// "before" would hide them.
			base := quiet(p.pid(), step)
			if first, ok := b.idleBase[p.name]; ok {
				base = first
			} else {
				b.idleBase[p.name] = base
			}
			var held []*idleSet
			have := 0
			for _, n := range b.cfg.idleN {
				if p.name == "dovecot-installed" && n > 1000 {
					if r == 0 {
						b.res.note("idle", "dovecot-installed is measured at 1,000 connections only, to bound the run and the memory of this shared machine: as installed it keeps one imap process per connection (no hibernation), about 5 MiB of RSS each.")
					}
					continue
				}
				s, err := openIdle(p.addr["imap"], us, n-have, b.nextIPs(n-have))
				if err != nil {
					b.res.note("idle", fmt.Sprintf("%s could not hold %d connections in round %d: %v.", p.name, n, r+1, err))
					break
				}
				held = append(held, s)
				have = n
				time.Sleep(settle)
				m := treeMemory(p.pid())
				cas := fmt.Sprintf("%d conns", n)
				b.res.add("idle", cas, "RSS MiB", p.name, float64(m.RSS)/(1<<20))
				b.res.add("idle", cas, "KiB/conn (RSS)", p.name, float64(m.RSS-base.RSS)/1024/float64(n))
				b.res.add("idle", cas, "KiB/conn (PSS)", p.name, float64(m.PSS-base.PSS)/1024/float64(n))
				b.res.add("idle", cas, "processes", p.name, float64(m.Procs))
			}
			for _, h := range held {
				h.close()
			}
		}
	}
	return nil
}

func isDovecot(p *proc) bool { return len(p.name) >= 7 && p.name[:7] == "dovecot" }

// quiet waits until the server's process tree stops changing (Dovecot ends
// the processes of the previous round's connections for a while after they
// close) and returns its memory then: the baseline of a measurement. It
// samples every step and wants three samples alike.
func quiet(pid int, step time.Duration) memory {
	m := treeMemory(pid)
	stable := 0
	for deadline := time.Now().Add(90 * time.Second); stable < 3 && time.Now().Before(deadline); {
		time.Sleep(step)
		n := treeMemory(pid)
		if n.Procs == m.Procs && n.RSS <= m.RSS+m.RSS/50 && n.RSS >= m.RSS-m.RSS/50 {
			stable++
		} else {
			stable = 0
		}
		m = n
	}
	return m
}
