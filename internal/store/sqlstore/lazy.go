package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Lazy mail changes on SQLite.
//
// Once LazyMailChanges is on (postern serve --mail-fsync optimized, the
// default), a flag change (STORE) or an expunge commits through the
// connections with synchronous=NORMAL: the commit writes the WAL and
// returns without an fsync, as Dovecot's mail_fsync=optimized leaves its
// index files to the kernel. Everything else (a delivered, appended,
// copied or moved message, a password, a setting) still commits with
// FULL; \Recent claims never waited (db.async). Since SQLite writes the
// WAL in order and replays it in order up to the first missing frame,
// every FULL commit makes each lazy one before it durable too. A background flush
// syncs the WAL within lazyFlushEvery of a lazy commit. So a power cut
// (not a crash of the process alone: the kernel holds the frames) can undo
// at most that last moment's flag changes and expunges: flags go back and
// expunged messages come back; no message is ever lost. Under imaptest
// two of every three changes are STOREs and EXPUNGEs, each an fsync before.
//
// What a client was shown must not be handed out again: a lost flag
// change took a mod-sequence that a CONDSTORE or QRESYNC client may keep,
// and the next change would take it again, unseen by that client. So the
// database is marked (server_settings, with FULL) while lazy commits may
// be unsynced, and the mark is cleared at a clean Close; a LazyMailChanges
// that finds the mark left by a process that stopped without it moves every
// mailbox's HIGHESTMODSEQ past anything the lost moment can have handed
// out (modSeqGap), and those clients then resynchronise what changed.

// lazyFlushEvery bounds how long a lazy commit may wait for the disk.
var lazyFlushEvery = time.Second

// modSeqGap is what every mailbox's HIGHESTMODSEQ moves after an unclean
// stop: far more mod-sequences than SQLite can hand out in lazyFlushEvery
// (one a transaction), and nothing next to 2^63.
const modSeqGap = 1 << 24

// lazyMark is the server_settings row present while lazy commits may be
// unsynced.
const lazyMark = "mail_lazy_commits"

// lazyCommits is the state of lazy commits of a DB.
type lazyCommits struct {
	on    atomic.Bool
	dirty atomic.Bool // a lazy commit (or claim) since the last flush
	count atomic.Uint64

	stop chan struct{}
	done sync.WaitGroup

	sync func(path string) error // tests: instead of syncWAL
}

// LazyMailChanges turns lazy commits of flag changes and expunges on, on
// SQLite (nothing on PostgreSQL, whose changes share its WAL flushes,
// durable.go): it moves the mod-sequences past a lost moment if the last
// process stopped with lazy commits unsynced, sets the mark, and starts
// the background flush. Close stops it and clears the mark.
func (db *DB) LazyMailChanges(ctx context.Context) error {
	if db.Dialect != SQLite || db.lazy.on.Load() {
		return nil
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var v string
		err := tx.QueryRowContext(ctx, serverSettingQuery, lazyMark).Scan(&v)
		if err == nil {
			if _, err := tx.ExecContext(ctx, `UPDATE mailboxes SET highest_modseq = highest_modseq + ?`, modSeqGap); err != nil {
				return err
			}
		} else if !notFound(err) {
			return err
		}
		_, err = tx.ExecContext(ctx, setServerSettingQuery, lazyMark, time.Now().UTC().Format(time.RFC3339))
		return err
	})
	if err != nil {
		return wrap("lazy mail changes", err)
	}
	db.lazy.stop = make(chan struct{})
	db.lazy.done.Add(1)
	go db.flushLazy()
	db.lazy.on.Store(true)
	return nil
}

// flushLazy syncs the WAL every lazyFlushEvery while lazy commits wait.
func (db *DB) flushLazy() {
	defer db.lazy.done.Done()
	t := time.NewTicker(lazyFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-db.lazy.stop:
			return
		case <-t.C:
			if db.lazy.dirty.Swap(false) {
				sync := syncWAL
				if db.lazy.sync != nil {
					sync = db.lazy.sync
				}
				if err := sync(db.DSN + "-wal"); err != nil {
					db.lazy.dirty.Store(true) // again at the next tick
				}
			}
		}
	}
}

// stopLazy stops the background flush and clears the mark with a FULL
// commit, which syncs every lazy commit before it.
func (db *DB) stopLazy() error {
	if !db.lazy.on.Swap(false) {
		return nil
	}
	close(db.lazy.stop)
	db.lazy.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := db.writing(ctx, func() error {
		_, err := db.SQL.ExecContext(ctx, `DELETE FROM server_settings WHERE name = ?`, lazyMark)
		return err
	})
	return wrap("lazy mail changes", err)
}

// LazyCommits returns how many transactions committed lazily.
func (db *DB) LazyCommits() uint64 { return db.lazy.count.Load() }

// syncWAL flushes the WAL file at path to disk. It is opened by its path
// at each flush, so that a WAL file SQLite has replaced is never the one
// flushed; a missing one has nothing to flush (SQLite removes it only
// after checkpointing it into the database file, which it syncs).
func syncWAL(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = datasync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
