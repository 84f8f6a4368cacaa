package sqlstore

import "time"

// SetHorizonTimes shortens watchHorizon's periods for a test.
func SetHorizonTimes(check, stuck time.Duration) (restore func()) {
	oc, os := horizonCheck, horizonStuck
	horizonCheck, horizonStuck = check, stuck
	return func() { horizonCheck, horizonStuck = oc, os }
}

// SetOptimisticTries sets how many optimistic attempts a change makes on
// PostgreSQL before it takes the mailbox lock (0: the locked path at once).
func SetOptimisticTries(n int) (restore func()) {
	old := optimisticTries
	optimisticTries = n
	return func() { optimisticTries = old }
}

// ConnStmtCap is how many statements a SQLite connection keeps prepared.
const ConnStmtCap = connStmtCap

// NotifiesSent is how many NOTIFYs db has sent (PostgreSQL).
func (db *DB) NotifiesSent() int64 { return db.notify.sent.Load() }

// NotifyGap is the least time between two NOTIFYs of one process.
func NotifyGap() time.Duration { return notifyGap }
