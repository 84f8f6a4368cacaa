package auth

import (
	"context"
	"hash/maphash"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/postern/postern/internal/account"
)

// recorder writes login records and app-password "last used" updates in the
// background: a login never waits for them, and when the database is slower
// than the logins the surplus is dropped and counted rather than queued
// without bound.
//
// Every failed attempt and every web sign-in is recorded. A successful
// third-party login is recorded once a minute per member, credential,
// protocol and address: a phone checking mail every few seconds, or Outlook's
// parallel connections, would otherwise write a row per connection (at peak
// a database write for every login, a sixth of the server's CPU in
// docs/benchmarks.md) and bury the failures an administrator looks for. The
// log has a line for every attempt.
type recorder struct {
	store     Store
	accounts  account.Store
	log       *slog.Logger
	m         *metrics
	now       func() time.Time
	interval  time.Duration
	batch     int
	retention time.Duration

	records chan LoginRecord
	touches chan account.Touch
	lines   chan logLine

	touched   recentSet // app password ids whose last use was queued
	succeeded recentSet // successful third-party logins recorded (recordKey)

	stop chan struct{}
	done sync.WaitGroup
}

// touchEvery is how often "last used" is written per app password (SPEC §3).
const touchEvery = time.Minute

// logLine is an attempt to log (logAttempt) on the recorder's goroutine.
type logLine struct {
	rec  LoginRecord
	wait time.Duration
}

func (r *recorder) start() {
	r.done.Add(3)
	go r.flushLoop()
	go r.touchLoop()
	go r.logLoop()
}

// logLine has the attempt's line written by logLoop, or at once when its
// queue is full (a line is never dropped).
func (r *recorder) logLine(rec LoginRecord, wait time.Duration) {
	select {
	case r.lines <- logLine{rec, wait}:
	default:
		logAttempt(r.log, &rec, wait, nil)
	}
}

// logLoop writes the attempts' log lines on a goroutine of its own, which
// costs the login less: formatted on the connection's goroutine, a line grew
// that goroutine's fresh stack (slog's handler goes deep), and the stack
// copies were several per cent of an IMAP login's CPU (docs/benchmarks.md).
// The lines keep their order; Close writes those still queued.
func (r *recorder) logLoop() {
	defer r.done.Done()
	for {
		select {
		case l := <-r.lines:
			logAttempt(r.log, &l.rec, l.wait, nil)
		case <-r.stop:
			for {
				select {
				case l := <-r.lines:
					logAttempt(r.log, &l.rec, l.wait, nil)
				default:
					return
				}
			}
		}
	}
}

// close writes what is queued and stops.
func (r *recorder) close() {
	close(r.stop)
	r.done.Wait()
}

// add queues a record; it never blocks.
func (r *recorder) add(rec LoginRecord) {
	if rec.Result == ResultOK && rec.Protocol != Web && r.succeeded.seen(recordKey(rec), rec.At) {
		r.m.recordsCoalesced.Inc()
		return
	}
	select {
	case r.records <- rec:
	default:
		r.m.recordsDropped.Inc()
	}
}

// touch queues a last-used update for app password id unless this process
// queued one for it within the last minute (the store also refuses updates
// newer than a minute, across nodes; this spares it the query).
func (r *recorder) touch(id, protocol, ip string, at time.Time) {
	if r.touched.seen(id, at) {
		return
	}
	select {
	case r.touches <- account.Touch{ID: id, At: at, Protocol: protocol, IP: ip, NotBefore: at.Add(-touchEvery)}:
	default:
		r.m.touchDropped.Inc()
		r.touched.forget(id) // let the next login try again
	}
}

// recordKey says which successful logins are the same for the records.
func recordKey(rec LoginRecord) string {
	return strings.Join([]string{strconv.FormatInt(rec.MemberID, 10), rec.AppPasswordID, rec.Protocol, rec.IP}, "\x00")
}

// recentSet remembers keys for a minute (touchEvery): seen reports whether
// key was seen within the last minute, and remembers it if not. Keys are kept
// as 64-bit hashes in two generations, each covering a minute and holding at
// most recentMax keys, so that it costs O(1) a call and a bounded amount of
// memory (about 4 MiB when full); past recentMax a key is not remembered and
// counts as new: a write too many, never one too few.
type recentSet struct {
	mu        sync.Mutex
	seed      maphash.Seed
	cur, prev map[uint64]time.Time
	since     time.Time // when cur began
}

const recentMax = 100_000

func (s *recentSet) hash(key string) uint64 {
	if s.cur == nil {
		s.seed = maphash.MakeSeed()
		s.cur, s.prev = map[uint64]time.Time{}, map[uint64]time.Time{}
	}
	return maphash.String(s.seed, key)
}

func (s *recentSet) seen(key string, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hash(key)
	if at.Sub(s.since) >= touchEvery {
		// Whatever prev holds is now over a minute old.
		s.prev, s.cur, s.since = s.cur, make(map[uint64]time.Time, len(s.cur)), at
	}
	for _, m := range []map[uint64]time.Time{s.cur, s.prev} {
		if last, ok := m[h]; ok && at.Sub(last) < touchEvery && !at.Before(last) {
			return true
		}
	}
	if len(s.cur) < recentMax {
		s.cur[h] = at
	}
	return false
}

func (s *recentSet) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hash(key)
	delete(s.cur, h)
	delete(s.prev, h)
}

func (r *recorder) flushLoop() {
	defer r.done.Done()
	nextPrune := r.now()
	batchLoop(r.records, r.stop, r.interval, r.batch, func(buf []LoginRecord) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.store.AddLoginRecords(ctx, buf); err != nil {
			r.m.recordErrors.Add(float64(len(buf)))
			r.log.Error("writing login records", "count", len(buf), "err", err)
		}
	}, func() {
		if now := r.now(); !now.Before(nextPrune) {
			nextPrune = now.Add(time.Hour)
			r.prune(now)
		}
	})
}

func (r *recorder) prune(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := r.store.PruneLoginRecords(ctx, now.Add(-r.retention))
	if err != nil {
		r.log.Error("pruning login records", "err", err)
	} else if n > 0 {
		r.log.Info("pruned login records", "count", n)
	}
}

// touchLoop writes the last uses in batches, one transaction (one fsync)
// each, as flushLoop does the records.
func (r *recorder) touchLoop() {
	defer r.done.Done()
	batchLoop(r.touches, r.stop, r.interval, r.batch, func(buf []account.Touch) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.accounts.TouchAppPasswords(ctx, buf); err != nil {
			r.log.Error("updating app password last use", "count", len(buf), "err", err)
		}
	}, nil)
}

// batchLoop hands what arrives on in to flush in batches of at most max,
// every interval at least; after each tick's flush it calls tick (when not
// nil). When stop is closed it flushes what is queued and returns.
func batchLoop[T any](in <-chan T, stop <-chan struct{}, interval time.Duration, max int, flush func([]T), tick func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	buf := make([]T, 0, max)
	out := func() {
		if len(buf) > 0 {
			flush(buf)
			clear(buf) // drop references for the collector
			buf = buf[:0]
		}
	}
	add := func(v T) {
		if buf = append(buf, v); len(buf) >= max {
			out()
		}
	}
	for {
		select {
		case v := <-in:
			add(v)
		case <-t.C:
			out()
			if tick != nil {
				tick()
			}
		case <-stop:
			for {
				select {
				case v := <-in:
					add(v)
				default:
					out()
					return
				}
			}
		}
	}
}

// cleanUsername keeps what a client sent as user name fit for a record and a
// log line: valid UTF-8, no control characters, at most 128 characters.
func cleanUsername(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return -1
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > 128 {
		s = string([]rune(s)[:128])
	}
	return s
}
