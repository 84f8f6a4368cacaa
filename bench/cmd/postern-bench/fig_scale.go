package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// figScale: app-password IMAP logins at 16 clients against a database of
// scaleSmall members and one of scaleLarge members, each member holding 5
// app passwords, on SQLite and (with --pg) PostgreSQL. The logins take the
// members in turn, each measurement continuing where the instance's last one
// stopped: with 100,000 members no member logs in twice within a minute, so
// every login is its member's first of the minute and writes what such a
// login writes (a login record, a last use), as a large organisation's
// phones, each checking mail every few minutes, do.
func (b *bench) figScale(ctx context.Context) error {
	if b.cfg.postern == "" {
		return nil
	}
	type inst struct {
		engine, size string
		p            *proc
		us           []user
		next         atomic.Int64 // the member the next measurement starts with
		cleanup      func()
	}
	var insts []*inst
	defer func() {
		for _, in := range insts {
			in.p.stop()
			if in.cleanup != nil {
				in.cleanup()
			}
		}
	}()
	sizes := []int{b.cfg.scaleSmall, b.cfg.scaleLarge}
	// "sqlite, cache off" runs with --credential-cache 0: every login reads
	// the database, which is what the cache saves and what a member's first
	// login after a change costs.
	engines := []string{"sqlite", "sqlite, cache off"}
	if b.cfg.pg != "" {
		engines = append(engines, "postgres")
	}
	for _, engine := range engines {
		for _, n := range sizes {
			name := fmt.Sprintf("scale-%s-%d", strings.ReplaceAll(strings.ReplaceAll(engine, ",", ""), " ", "-"), n)
			data := filepath.Join(b.cfg.work, name)
			keyFile := filepath.Join(data, "secret.key")
			key, err := writeKey(keyFile)
			if err != nil {
				return err
			}
			o := posternOpts{bin: b.cfg.postern, data: data, secretFile: keyFile}
			if engine == "sqlite, cache off" {
				o.extra = []string{"--credential-cache", "0"}
			}
			dsn := filepath.Join(data, "postern.db")
			var cleanup func()
			if engine == "postgres" {
				schema := fmt.Sprintf("bench_%d", n)
				if dsn, err = freshSchema(ctx, b.cfg.pg, schema); err != nil {
					return err
				}
				o.database = dsn
				cleanup = func() { dropSchema(b.cfg.pg, schema) }
			}
			d, err := seed(ctx, dsn, key, n, 5, 0)
			if err != nil {
				return fmt.Errorf("seed %s: %w", name, err)
			}
			b.res.add("scale-seed", engine, "seconds", sizeName(n), d.Seconds())
			p, err := startPostern(name, o, b.cfg.work)
			if err != nil {
				return err
			}
			in := &inst{engine: engine, size: sizeName(n), p: p, us: users(0, n), cleanup: cleanup}
			insts = append(insts, in)
			if engine == "sqlite" {
				// The credential cache reads every member at start, in the
				// background; measure once it has.
				if err := waitLog(filepath.Join(b.cfg.work, name+".log"), "credential cache warmed", 2*time.Minute); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
			// Every member logs in once before the measurement, as the
			// phones of a running organisation have: the steady state,
			// with the database's (or the cache's) pages of every member
			// in memory, not a cold start.
			everyMemberOnce(in.us, func(w int, u user) { imapCycle(p.addr["imap"], b.workerIP(w), u.Email, u.Pass) })
		}
	}
	// The warm-up's logins write like the measured ones and would spare
	// them that within the minute (touchEvery in internal/auth): the
	// measurements start once the last warm-up login is a minute old.
	if !b.cfg.quick {
		time.Sleep(61 * time.Second)
	}
	for r := 0; r < b.cfg.rounds; r++ {
		for e := range engines {
			// A, B, B, A: the machine's speed drifts by a fifth within a
			// minute here, and a drift that is steady over the four
			// measurements then weighs on both sizes alike.
			a, z := insts[2*e], insts[2*e+1]
			if r%2 == 1 {
				a, z = z, a
			}
			for _, in := range []*inst{a, z, z, a} {
				res := runLoad(16, b.cfg.dur, loginInTurn("imap", in.p.addr["imap"], in.us, b.workerIP, &in.next))
				b.res.add("scale", in.engine+" imap c=16", "cycles/s", in.size, res.Rate)
				b.res.add("scale", in.engine+" imap c=16", "p99 ms", in.size, res.P99)
				if res.Errors > 0 {
					b.res.note("scale", fmt.Sprintf("%s: %d failed logins in round %d.", in.p.name, res.Errors, r+1))
				}
			}
		}
	}
	return nil
}

func sizeName(n int) string {
	switch {
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk members", n/1000)
	}
	return fmt.Sprintf("%d members", n)
}

// everyMemberOnce calls login for every member, 16 at a time.
func everyMemberOnce(us []user, login func(w int, u user)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for k := int(next.Add(1)) - 1; k < len(us); k = int(next.Add(1)) - 1 {
				login(w, us[k])
			}
		}(w)
	}
	wg.Wait()
}
