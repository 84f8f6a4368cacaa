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
	accounts  toucher
	log       *slog.Logger
	m         *metrics
	now       func() time.Time
	retention time.Duration

	records *batches[LoginRecord]
	touches *batches[account.Touch]
	lines   *batches[logLine]

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

// lineGather is how long an attempt's log line waits for others, to be
// written with them (batches): a hundredth of a second, well within the log's
// own buffering (cmd/postern, logbuf.go); each line carries its attempt's time.
const lineGather = 10 * time.Millisecond

// toucher records the last uses of app passwords (account.Service).
type toucher interface {
	TouchAppPasswords(ctx context.Context, uses []account.Touch) error
}

// newRecorder returns a recorder that holds up to buffer records and log
// lines, and writes records and last uses every interval, batch at once.
func newRecorder(store Store, accounts toucher, log *slog.Logger, m *metrics, now func() time.Time,
	interval time.Duration, batch, buffer int, retention time.Duration) *recorder {
	return &recorder{store: store, accounts: accounts, log: log, m: m, now: now,
		retention: retention,
		records:   newBatches[LoginRecord](buffer, batch, interval),
		touches:   newBatches[account.Touch](1024, batch, interval),
		lines:     newBatches[logLine](buffer, buffer, lineGather),
		stop:      make(chan struct{})}
}

func (r *recorder) start() {
	r.done.Add(4)
	go r.flushLoop()
	go r.pruneLoop()
	go r.touchLoop()
	go r.logLoop()
}

// logLine has the attempt's line written by logLoop, or at once when its
// queue is full (a line is never dropped).
func (r *recorder) logLine(rec LoginRecord, wait time.Duration) {
	if !r.lines.add(logLine{rec, wait}) {
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
	r.lines.run(r.stop, func(ls []logLine) {
		for i := range ls {
			logAttempt(r.log, &ls[i].rec, ls[i].wait, nil)
		}
	})
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
	if !r.records.add(rec) {
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
	if !r.touches.add(account.Touch{ID: id, At: at, Protocol: protocol, IP: ip, NotBefore: at.Add(-touchEvery)}) {
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

// flushLoop writes the records in batches, one transaction (one fsync) each.
func (r *recorder) flushLoop() {
	defer r.done.Done()
	r.records.run(r.stop, func(buf []LoginRecord) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.store.AddLoginRecords(ctx, buf); err != nil {
			r.m.recordErrors.Add(float64(len(buf)))
			r.log.Error("writing login records", "count", len(buf), "err", err)
		}
	})
}

// pruneLoop deletes the records past their retention, at start and hourly.
func (r *recorder) pruneLoop() {
	defer r.done.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		r.prune(r.now())
		select {
		case <-t.C:
		case <-r.stop:
			return
		}
	}
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
	r.touches.run(r.stop, func(buf []account.Touch) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.accounts.TouchAppPasswords(ctx, buf); err != nil {
			r.log.Error("updating app password last use", "count", len(buf), "err", err)
		}
	})
}

// cleanUsername keeps what a client sent as user name fit for a record and a
// log line: valid UTF-8, no control characters, at most 128 characters.
func cleanUsername(s string) string { return clean(s, 128) }

// cleanClient is cleanUsername for a client's name, at most 256 characters.
func cleanClient(s string) string { return clean(s, 256) }

func clean(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return -1
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max])
	}
	return s
}
