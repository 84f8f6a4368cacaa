package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/postern/postern/internal/account"
)

// micros and fromMicros convert times to the INTEGER/BIGINT microseconds both
// engines store.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// writeEffects writes the messages and events that go with a change, inside
// the change's transaction: nothing is lost, nothing is sent twice.
func (db *DB) writeEffects(ctx context.Context, tx *sql.Tx, fx account.Effects) error {
	now := time.Now().UTC()
	for _, a := range fx.Audit {
		if err := db.writeAudit(ctx, tx, a, now); err != nil {
			return err
		}
	}
	for _, m := range fx.Messages {
		at := m.CreatedAt
		if at.IsZero() {
			at = now
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO messages (member_id, kind, subject, body, created_at, params) VALUES (?, ?, ?, ?, ?, ?)`),
			m.MemberID, m.Kind, m.Subject, m.Body, micros(at), encodeParams(m.Params)); err != nil {
			return err
		}
		// The mail rendering goes to the member's INBOX in this same
		// transaction: delivered exactly when the change commits, once. The
		// delivery writes its own mailbox.changed event (so IDLE sees the
		// mail).
		if len(m.Mail) > 0 {
			if err := db.deliverTx(ctx, tx, m.MemberID, m.Mail); err != nil {
				return fmt.Errorf("deliver %s notification: %w", m.Kind, err)
			}
		}
	}
	if len(fx.Events) == 0 {
		return nil
	}
	for _, e := range fx.Events {
		at := e.CreatedAt
		if at.IsZero() {
			at = now
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO events (kind, member_id, app_password_id, mailbox_id, domain_id, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
			string(e.Kind), e.MemberID, e.AppPasswordID, e.MailboxID, e.DomainID, micros(at)); err != nil {
			return err
		}
	}
	if db.Dialect == Postgres {
		// Every node LISTENing then reads the outbox at once. (On PostgreSQL
		// each event row carries its transaction's id by default: see
		// EventsAfter.)
		db.afterCommit(tx, db.notifyEvents)
	}
	return nil
}

// execWithEffects runs one statement that must change a row (missing
// otherwise) and writes fx with it: a single statement, one round trip,
// when fx is empty, a transaction otherwise.
func (db *DB) execWithEffects(ctx context.Context, missing error, fx []account.Effects, query string, args ...any) error {
	if len(fx) == 0 {
		return db.execOne(ctx, db.SQL, missing, query, args...)
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		if err := db.execOne(ctx, tx, missing, query, args...); err != nil {
			return err
		}
		return db.writeAllEffects(ctx, tx, fx)
	})
}

// writeAllEffects writes each of fx (the optional effects of a change).
func (db *DB) writeAllEffects(ctx context.Context, tx *sql.Tx, fx []account.Effects) error {
	for _, f := range fx {
		if err := db.writeEffects(ctx, tx, f); err != nil {
			return err
		}
	}
	return nil
}
