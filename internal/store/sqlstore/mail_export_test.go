package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

var errRollback = errors.New("rolled back on purpose")

// WriteEffectsForTest writes fx with writeEffects in a transaction of its
// own (db.tx, so that its afterCommit hooks run), which it rolls back instead
// of committing when rollback is set.
func (db *DB) WriteEffectsForTest(ctx context.Context, fx account.Effects, rollback bool) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := db.writeEffects(ctx, tx, fx); err != nil {
			return err
		}
		if rollback {
			return errRollback
		}
		return nil
	})
	if rollback && errors.Is(err, errRollback) {
		return nil
	}
	return err
}

// NameKeyForTest is nameKey, the app_passwords.name_key of a name.
func NameKeyForTest(name string) string { return nameKey(name) }

// SetMaxTombstones lowers maxTombstones for a test.
func SetMaxTombstones(n int64) (restore func()) {
	old := maxTombstones
	maxTombstones = n
	return func() { maxTombstones = old }
}

// FullStateForTest is State read whole, without the view cache.
func (db *DB) FullStateForTest(ctx context.Context, mailboxID int64) (mailstore.Mailbox, []mailstore.MessageInfo, error) {
	return db.openWith(ctx, stateQuery, mailboxID)
}

// ViewCacheCounts returns how many State calls the view cache answered as
// cached, brought up to date from the changes, and read whole.
func (db *DB) ViewCacheCounts() (hits, patches, misses uint64) {
	return db.views.hits.Load(), db.views.patches.Load(), db.views.misses.Load()
}

// ViewStores returns how many STOREs were planned on a cached view.
func (db *DB) ViewStores() uint64 { return db.views.stores.Load() }

// ViewChecks is how many times State read the mailbox row alone first.
func (db *DB) ViewChecks() uint64 { return db.views.checks.Load() }

// SetViewBudget replaces the view cache with an empty one of this budget.
func (db *DB) SetViewBudget(n int) { db.views = newViewCache(n) }

// EphemeralForTest is the pool of writes that need not survive a crash.
func (db *DB) EphemeralForTest() *sql.DB { return db.async }

// GroupWrites returns how many pipelines of mailbox changes were sent on
// PostgreSQL and the statements they held.
func (db *DB) GroupWrites() (pipelines, statements uint64) {
	db.groups.mu.Lock()
	defer db.groups.mu.Unlock()
	return db.groups.pipelines, db.groups.statements
}

// PlannedForTest is PostgreSQL's pool of generic plans (prepared.go).
func (db *DB) PlannedForTest() *sql.DB { return db.planned }

// FlushRounds returns how many flushes durable has made.
func (db *DB) FlushRounds() uint64 {
	db.flush.mu.Lock()
	defer db.flush.mu.Unlock()
	return db.flush.rounds
}

// DurableForTest is durable.
func (db *DB) DurableForTest(ctx context.Context) error { return db.durable(ctx) }

// ExplainStateForTest runs EXPLAIN ANALYZE of the re-read of a view of the
// mailbox at mod-sequence since and UIDNEXT uidNext (stateChangesQueryPG)
// and returns the plan.
func (db *DB) ExplainStateForTest(ctx context.Context, mailboxID int64, since uint64, uidNext uint32) (string, error) {
	rows, err := db.SQL.QueryContext(ctx, "EXPLAIN (ANALYZE, COSTS OFF) "+db.q(stateChangesQueryPG),
		mailboxID, mailboxID, int64(uidNext), mailboxID, int64(since), mailboxID, int64(uidNext), mailboxID, int64(since))
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", err
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n"), rows.Err()
}

// SetLazyForTest makes db's background flushes of lazy commits run every
// d and call sync instead of syncing the WAL; call before LazyMailChanges.
func (db *DB) SetLazyForTest(d time.Duration, sync func(path string) error) (restore func()) {
	old := lazyFlushEvery
	lazyFlushEvery = d
	db.lazy.sync = sync
	return func() { lazyFlushEvery = old }
}

// LazyMark is the server setting present while lazy commits may be unsynced.
const LazyMark = lazyMark

// ModSeqGap is how far HIGHESTMODSEQ moves after an unclean stop.
const ModSeqGap = modSeqGap

// WriteGroupedForTest queues a statement on the mailbox's group write.
func (db *DB) WriteGroupedForTest(ctx context.Context, mailboxID int64, query string, args []any, dest ...any) error {
	return db.writeGrouped(ctx, mailboxID, query, args, dest...)
}

// GenericPlansForTest returns the generic plans, on the planned pool, of
// the group writes that look messages up by id: a STORE's
// compare-and-set and an EXPUNGE's.
func (db *DB) GenericPlansForTest(ctx context.Context) (map[string]string, error) {
	conn, err := db.planned.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	plans := map[string]string{}
	for name, q := range map[string]string{"store": storeFlagsIfQueryPG, "expunge": expungeIfQueryPG} {
		if _, err := conn.ExecContext(ctx, "PREPARE plan_"+name+" AS "+q); err != nil {
			return nil, err
		}
		args := "(1, '{1,2}', '{a,b}', '{1,1}', 'k', 0)"
		if name == "expunge" {
			args = "(1, '{1,2}', 'k', 0)"
		}
		rows, err := conn.QueryContext(ctx, "EXPLAIN (COSTS OFF) EXECUTE plan_"+name+args)
		if err != nil {
			return nil, err
		}
		var out []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, line)
		}
		rows.Close()
		if _, err := conn.ExecContext(ctx, "DEALLOCATE plan_"+name); err != nil {
			return nil, err
		}
		plans[name] = strings.Join(out, "\n")
	}
	return plans, nil
}

// PruneTombstonesForTest prunes the mailbox's tombstones as an expunge that
// counted n of them would, in a transaction of its own.
func (db *DB) PruneTombstonesForTest(ctx context.Context, mailboxID, n int64) error {
	return db.pruneMailboxTombstones(ctx, mailboxID, n)
}
