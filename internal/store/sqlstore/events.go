package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/postern/postern/internal/account"
)

// EventsAfter returns up to limit events with Seq > seq, in Seq order. On
// PostgreSQL writeEffects serialises event transactions, so a reader that has
// seen seq N never finds a smaller seq committed later.
func (db *DB) EventsAfter(ctx context.Context, seq int64, limit int) ([]account.Event, error) {
	rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT seq, kind, member_id, app_password_id, mailbox_id, created_at
		FROM events WHERE seq > ? ORDER BY seq LIMIT ?`), seq, limit)
	if err != nil {
		return nil, fmt.Errorf("events after %d: %w", seq, err)
	}
	defer rows.Close()
	var out []account.Event
	for rows.Next() {
		var e account.Event
		var kind string
		var created int64
		if err := rows.Scan(&e.Seq, &kind, &e.MemberID, &e.AppPasswordID, &e.MailboxID, &created); err != nil {
			return nil, fmt.Errorf("events after %d: %w", seq, err)
		}
		e.Kind, e.CreatedAt = account.EventKind(kind), fromMicros(created)
		out = append(out, e)
	}
	return out, rows.Err()
}

// LastEventSeq returns the highest seq in the outbox, 0 when it is empty: a
// tailer starting from it sees only what happens from now on.
func (db *DB) LastEventSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := db.SQL.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("last event seq: %w", err)
	}
	return seq, nil
}

// PruneEvents deletes the events created before t; every node has read them
// long since. Seqs are never reused (AUTOINCREMENT, a sequence), so pruning
// cannot make a tailer see an old seq again.
func (db *DB) PruneEvents(ctx context.Context, before time.Time) error {
	if _, err := db.SQL.ExecContext(ctx, db.q(`DELETE FROM events WHERE created_at < ?`), micros(before)); err != nil {
		return fmt.Errorf("prune events: %w", err)
	}
	return nil
}
