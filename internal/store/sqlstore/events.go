package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/postern/postern/internal/account"
)

// EventsAfter returns up to limit events after pos, in EventPos order.
//
// SQLite has one writer at a time, so events commit in seq order and Txn is
// 0. PostgreSQL hands out seqs at INSERT and makes them visible at COMMIT,
// in whatever order transactions end; rather than make writers commit one
// at a time (which serialises every delivery's WAL flush), each event
// carries its transaction's id and a reader takes only events of
// transactions below its snapshot's xmin: every such transaction has ended,
// and every transaction still to commit has an id at or above it, so nothing
// can later appear behind the position read. The cost: a transaction left
// open holds events back until it ends (watchHorizon says which).
func (db *DB) EventsAfter(ctx context.Context, after account.EventPos, limit int) ([]account.Event, error) {
	var rows *sql.Rows
	var err error
	if db.Dialect == Postgres {
		db.watchHorizon(ctx)
		rows, err = db.queryEachPlan(ctx, db.SQL, `SELECT seq, xid, kind, member_id, app_password_id, mailbox_id, domain_id, created_at
			FROM events
			WHERE (xid, seq) > ($1, $2) AND xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
			ORDER BY xid, seq LIMIT $3`, after.Txn, after.Seq, limit)
	} else {
		rows, err = db.SQL.QueryContext(ctx, `SELECT seq, 0, kind, member_id, app_password_id, mailbox_id, domain_id, created_at
			FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, after.Seq, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("events after %v: %w", after, err)
	}
	defer rows.Close()
	var out []account.Event
	for rows.Next() {
		var e account.Event
		var kind string
		var created int64
		if err := rows.Scan(&e.Seq, &e.Txn, &kind, &e.MemberID, &e.AppPasswordID, &e.MailboxID, &e.DomainID, &created); err != nil {
			return nil, fmt.Errorf("events after %v: %w", after, err)
		}
		e.Kind, e.CreatedAt = account.EventKind(kind), fromMicros(created)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events after %v: %w", after, err)
	}
	// Counted before the caller hands the events on: a listing read after
	// this holds their changes (Mail.StateHeard).
	db.heard.Add(1)
	for _, e := range out {
		if e.Kind == account.EventMailboxChanged && e.MailboxID != 0 {
			db.views.noteChanged(e.MailboxID)
		}
	}
	return out, nil
}

// LastEventPos returns where a tailer starts so that it sees only what is
// committed from now on: after the last event (SQLite), or before the
// oldest transaction still running (PostgreSQL; its events, and all later
// ones, are yet to be read).
func (db *DB) LastEventPos(ctx context.Context) (account.EventPos, error) {
	var pos account.EventPos
	var err error
	if db.Dialect == Postgres {
		err = db.SQL.QueryRowContext(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1`).Scan(&pos.Txn)
		pos.Seq = math.MaxInt64
	} else {
		err = db.SQL.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&pos.Seq)
	}
	if err != nil {
		return pos, fmt.Errorf("last event position: %w", err)
	}
	return pos, nil
}

// PruneEvents deletes the events created before t; every node has read them
// long since. Seqs are never reused (AUTOINCREMENT, a sequence), nor are
// PostgreSQL's transaction ids, so pruning cannot make a tailer see an old
// event again.
func (db *DB) PruneEvents(ctx context.Context, before time.Time) error {
	if _, err := db.SQL.ExecContext(ctx, db.q(`DELETE FROM events WHERE created_at < ?`), micros(before)); err != nil {
		return fmt.Errorf("prune events: %w", err)
	}
	return nil
}

// horizon is what watchHorizon last saw.
type horizon struct {
	mu      sync.Mutex
	checked time.Time // last look, at most one every horizonCheck
	xmin    int64
	since   time.Time // when xmin took its value while a transaction ran
	warned  time.Time
}

// How often watchHorizon looks, and how long a held horizon is tolerated
// (variables for the tests).
var (
	horizonCheck = 10 * time.Second
	horizonStuck = 30 * time.Second
)

// watchHorizon warns, at most once a minute, when the oldest running
// transaction of the PostgreSQL server has held events back for longer than
// horizonStuck, naming its session: revocations then reach the other nodes'
// sessions only when it ends. (idle_in_transaction_session_timeout is the
// server's own guard against a forgotten one.)
func (db *DB) watchHorizon(ctx context.Context) {
	h := &db.horizon
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if now.Sub(h.checked) < horizonCheck {
		return
	}
	h.checked = now
	var xmin, xmax int64
	if err := db.SQL.QueryRowContext(ctx, `SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint
		FROM pg_current_snapshot() s`).Scan(&xmin, &xmax); err != nil {
		return // the events query reports the database's trouble
	}
	if xmin == xmax || xmin != h.xmin {
		// Nothing running, or the horizon moved.
		h.xmin, h.since = xmin, now
		return
	}
	held := now.Sub(h.since)
	if held < horizonStuck || !h.warned.IsZero() && now.Sub(h.warned) < time.Minute {
		return
	}
	h.warned = now
	var pid sql.NullInt64
	var datname, app, state sql.NullString
	// backend_xid is the 32-bit form of the id. The session's query is not
	// logged: another application's SQL may hold its secrets.
	db.SQL.QueryRowContext(ctx, `SELECT pid, datname, application_name, state FROM pg_stat_activity
		WHERE backend_xid::text::bigint = $1 % 4294967296`, xmin).Scan(&pid, &datname, &app, &state)
	slog.Warn("a PostgreSQL transaction open too long holds back events (revocations, new mail) on every node until it ends",
		"held_for", held.Round(time.Second), "xid", xmin, "pid", pid.Int64, "database", datname.String,
		"application", app.String, "state", state.String)
}

// AwaitEvents returns once every transaction committed before the call can
// be read by EventsAfter: at once on SQLite; on PostgreSQL when the
// transactions running at the call have ended (an instant, unless one is
// left open).
func (db *DB) AwaitEvents(ctx context.Context) error {
	if db.Dialect != Postgres {
		return nil
	}
	var xmax int64
	if err := db.SQL.QueryRowContext(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&xmax); err != nil {
		return fmt.Errorf("await events: %w", err)
	}
	for wait := time.Millisecond; ; wait = min(wait*2, 50*time.Millisecond) {
		var xmin int64
		if err := db.SQL.QueryRowContext(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&xmin); err != nil {
			return fmt.Errorf("await events: %w", err)
		}
		if xmin >= xmax {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("await events: %w", ctx.Err())
		case <-t.C:
		}
	}
}
