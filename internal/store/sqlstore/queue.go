package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/queue"
)

// enqueueTx stores an outbound message and its recipients, due at once.
func (db *DB) enqueueTx(ctx context.Context, tx *sql.Tx, memberID int64, appPasswordID string, out *mailstore.Outbound, now time.Time) error {
	var id int64
	err := tx.QueryRowContext(ctx, db.q(`INSERT INTO queue_messages (member_id, app_password_id, mail_from, body, smtputf8, eightbit, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		memberID, appPasswordID, out.From, out.Body, out.SMTPUTF8, out.EightBit, micros(now)).Scan(&id)
	if err != nil {
		return fmt.Errorf("queue a message: %w", err)
	}
	for _, rcpt := range out.Rcpts {
		_, domain, _ := strings.Cut(rcpt, "@")
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO queue_recipients (message_id, address, domain, next_attempt) VALUES (?, ?, ?, ?)`),
			id, rcpt, strings.ToLower(domain), micros(now)); err != nil {
			return fmt.Errorf("queue a recipient: %w", err)
		}
	}
	return nil
}

// Submit implements the submission listener's store: the local copies
// delivered, the outbound copy queued and the message counted in the send
// log, in one transaction, so the 250 that follows the commit covers every
// recipient and the sending caps count exactly what was accepted.
func (s *Mail) Submit(ctx context.Context, sub mailstore.Submission) error {
	for _, d := range sub.Local {
		if err := checkLen(len(d.Header) + len(d.Body)); err != nil {
			return err
		}
	}
	if sub.Outbound != nil {
		if err := checkLen(len(sub.Outbound.Body)); err != nil {
			return err
		}
	}
	db := s.db
	now := time.Now()
	return mailErr("submit", db.tx(ctx, func(tx *sql.Tx) error {
		if err := db.deliverAllTx(ctx, tx, sub.Local); err != nil {
			return err
		}
		// Counted for the sending caps exactly when it is accepted.
		if err := db.recordSendTx(ctx, tx, sub.MemberID, sub.AppPasswordID, sub.Recipients, now); err != nil {
			return err
		}
		if sub.Outbound != nil && len(sub.Outbound.Rcpts) > 0 {
			return db.enqueueTx(ctx, tx, sub.MemberID, sub.AppPasswordID, sub.Outbound, now)
		}
		return nil
	}))
}

// Queue returns the outbound queue's store.
func (db *DB) Queue() *Queue { return &Queue{db: db} }

// Queue is the outbound queue (queue.Store).
type Queue struct{ db *DB }

var _ queue.Store = (*Queue)(nil)

const queueMsgCols = `id, member_id, app_password_id, mail_from, smtputf8, eightbit, created_at`

func scanQueueMessage(sc interface{ Scan(...any) error }) (queue.Message, error) {
	var m queue.Message
	var created int64
	err := sc.Scan(&m.ID, &m.MemberID, &m.AppPasswordID, &m.From, &m.SMTPUTF8, &m.EightBit, &created)
	m.CreatedAt = fromMicros(created)
	return m, err
}

const queueRcptCols = `id, message_id, address, domain, held, attempts, next_attempt, last_error, delay_notified`

func scanQueueRecipient(sc interface{ Scan(...any) error }) (queue.Recipient, error) {
	var r queue.Recipient
	var next int64
	err := sc.Scan(&r.ID, &r.MessageID, &r.Address, &r.Domain, &r.Held, &r.Attempts, &next, &r.LastError, &r.DelayNotified)
	r.NextAttempt = fromMicros(next)
	return r, err
}

// ClaimDue implements queue.Store. On PostgreSQL concurrent claimers skip
// each other's rows (FOR UPDATE SKIP LOCKED); SQLite has one writer.
func (q *Queue) ClaimDue(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]queue.Claim, error) {
	db := q.db
	// Whole messages: a message's due recipients go out together (one
	// SMTP transaction per domain), never split between two claims.
	const due = `NOT held AND next_attempt <= ? AND lease_until < ?`
	pick := `SELECT id FROM queue_recipients WHERE ` + due + ` AND message_id IN (
		SELECT message_id FROM queue_recipients WHERE ` + due + ` GROUP BY message_id ORDER BY MIN(next_attempt), message_id LIMIT ?)`
	if db.Dialect == Postgres {
		pick += ` FOR UPDATE SKIP LOCKED`
	}
	var rcpts []queue.Recipient
	err := db.tx(ctx, func(tx *sql.Tx) error {
		rcpts = rcpts[:0]
		rows, err := tx.QueryContext(ctx, db.q(`UPDATE queue_recipients SET lease_owner = ?, lease_until = ?, attempts = attempts + 1
			WHERE id IN (`+pick+`) RETURNING `+queueRcptCols), owner, micros(now.Add(lease)), micros(now), micros(now), micros(now), micros(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanQueueRecipient(rows)
			if err != nil {
				return err
			}
			rcpts = append(rcpts, r)
		}
		return rows.Err()
	})
	if err != nil || len(rcpts) == 0 {
		return nil, wrap("claim queued recipients", err)
	}
	ids := make([]int64, 0, len(rcpts))
	seen := map[int64]bool{}
	for _, r := range rcpts {
		if !seen[r.MessageID] {
			seen[r.MessageID] = true
			ids = append(ids, r.MessageID)
		}
	}
	msgs, err := q.messages(ctx, ids)
	if err != nil {
		return nil, wrap("claim queued recipients", err)
	}
	type group struct {
		message int64
		domain  string
	}
	var out []queue.Claim
	index := map[group]int{}
	for _, r := range rcpts {
		key := group{r.MessageID, r.Domain}
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, queue.Claim{Message: msgs[r.MessageID], Domain: r.Domain})
		}
		out[i].Recipients = append(out[i].Recipients, r)
	}
	return out, nil
}

func (q *Queue) messages(ctx context.Context, ids []int64) (map[int64]queue.Message, error) {
	out := map[int64]queue.Message{}
	for len(ids) > 0 {
		part := ids[:min(chunk, len(ids))]
		ids = ids[len(part):]
		rows, err := q.db.SQL.QueryContext(ctx, q.db.q(`SELECT `+queueMsgCols+` FROM queue_messages WHERE id IN (`+placeholders(len(part))+`)`), int64Args(part)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			m, err := scanQueueMessage(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out[m.ID] = m
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RenewLease implements queue.Store.
func (q *Queue) RenewLease(ctx context.Context, owner string, ids []int64, until time.Time) error {
	db := q.db
	var n int64
	for rest := ids; len(rest) > 0; {
		part := rest[:min(chunk, len(rest))]
		rest = rest[len(part):]
		res, err := db.SQL.ExecContext(ctx, db.q(`UPDATE queue_recipients SET lease_until = ? WHERE lease_owner = ? AND id IN (`+placeholders(len(part))+`)`),
			append([]any{micros(until), owner}, int64Args(part)...)...)
		if err != nil {
			return wrap("renew a queue lease", err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	if n != int64(len(ids)) {
		return queue.ErrLeaseLost
	}
	return nil
}

// QueuedBody implements queue.Store.
func (q *Queue) QueuedBody(ctx context.Context, messageID int64) ([]byte, error) {
	var body []byte
	err := q.db.SQL.QueryRowContext(ctx, q.db.q(`SELECT body FROM queue_messages WHERE id = ?`), messageID).Scan(&body)
	if notFound(err) {
		return nil, account.ErrNotFound
	}
	return body, wrap("read a queued message", err)
}

// Settle implements queue.Store.
func (q *Queue) Settle(ctx context.Context, owner string, s queue.Settlement) error {
	db := q.db
	return wrap("settle queued recipients", db.tx(ctx, func(tx *sql.Tx) error {
		all := append(append([]int64{}, s.Delivered...), s.Failed...)
		for _, d := range s.Deferred {
			all = append(all, d.ID)
		}
		if err := q.checkLease(ctx, tx, owner, all); err != nil {
			return err
		}
		gone := append(append([]int64{}, s.Delivered...), s.Failed...)
		var msgIDs []int64
		for len(gone) > 0 {
			part := gone[:min(chunk, len(gone))]
			gone = gone[len(part):]
			rows, err := tx.QueryContext(ctx, db.q(`DELETE FROM queue_recipients WHERE id IN (`+placeholders(len(part))+`) RETURNING message_id`), int64Args(part)...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				msgIDs = append(msgIDs, id)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		if err := db.execIn(ctx, tx, `DELETE FROM queue_messages WHERE id IN (%s) AND NOT EXISTS (SELECT 1 FROM queue_recipients WHERE message_id = queue_messages.id)`, msgIDs); err != nil {
			return err
		}
		for _, d := range s.Deferred {
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE queue_recipients SET next_attempt = ?, last_error = ?, lease_owner = '', lease_until = 0 WHERE id = ?`),
				micros(d.NextAttempt), d.LastError, d.ID); err != nil {
				return err
			}
		}
		if len(s.Notified) > 0 {
			if err := db.execIn(ctx, tx, `UPDATE queue_recipients SET delay_notified = TRUE WHERE id IN (%s)`, s.Notified); err != nil {
				return err
			}
		}
		for _, d := range s.DSNs {
			if err := db.deliverTx(ctx, tx, d.MemberID, d.Body); err != nil {
				return fmt.Errorf("deliver a delivery report: %w", err)
			}
		}
		return nil
	}))
}

// checkLease fails with queue.ErrLeaseLost unless every id is a recipient the
// owner holds; on PostgreSQL it locks them until the transaction ends.
func (q *Queue) checkLease(ctx context.Context, tx *sql.Tx, owner string, ids []int64) error {
	db := q.db
	for rest := ids; len(rest) > 0; {
		part := rest[:min(chunk, len(rest))]
		rest = rest[len(part):]
		var n int
		query := `SELECT id FROM queue_recipients WHERE id IN (` + placeholders(len(part)) + `) AND lease_owner = ?`
		if db.Dialect == Postgres {
			query += ` FOR UPDATE`
		}
		rows, err := tx.QueryContext(ctx, db.q(query), append(int64Args(part), owner)...)
		if err != nil {
			return err
		}
		for rows.Next() {
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n != len(part) {
			return queue.ErrLeaseLost
		}
	}
	return nil
}

// QueueSender implements queue.Store.
func (q *Queue) QueueSender(ctx context.Context, memberID int64) (queue.Sender, error) {
	s := queue.Sender{MemberID: memberID}
	err := q.db.SQL.QueryRowContext(ctx, q.db.q(`SELECT m.email, COALESCE(p.language, '') FROM members m
		LEFT JOIN member_prefs p ON p.member_id = m.id WHERE m.id = ?`), memberID).Scan(&s.Email, &s.Language)
	if notFound(err) {
		return s, account.ErrNotFound
	}
	return s, wrap("read a sender", err)
}

// SetLanguage records the member's language for the mail Postern writes
// to them.
func (db *DB) SetLanguage(ctx context.Context, memberID int64, lang string) error {
	_, err := db.SQL.ExecContext(ctx, db.q(`INSERT INTO member_prefs (member_id, language) VALUES (?, ?)
		ON CONFLICT (member_id) DO UPDATE SET language = excluded.language`), memberID, lang)
	return wrap("set language", err)
}

// QueueEntries implements queue.Store: every queued message, oldest first.
func (q *Queue) QueueEntries(ctx context.Context) ([]queue.Entry, error) {
	return q.entries(ctx, "")
}

// QueueEntry implements queue.Store.
func (q *Queue) QueueEntry(ctx context.Context, messageID int64) (queue.Entry, error) {
	list, err := q.entries(ctx, " WHERE m.id = ?", messageID)
	if err != nil {
		return queue.Entry{}, err
	}
	if len(list) == 0 {
		return queue.Entry{}, account.ErrNotFound
	}
	return list[0], nil
}

func (q *Queue) entries(ctx context.Context, where string, args ...any) ([]queue.Entry, error) {
	db := q.db
	rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT m.id, m.member_id, m.app_password_id, m.mail_from, m.smtputf8, m.eightbit, m.created_at, LENGTH(m.body),
		r.id, r.message_id, r.address, r.domain, r.held, r.attempts, r.next_attempt, r.last_error, r.delay_notified
		FROM queue_messages m JOIN queue_recipients r ON r.message_id = m.id`+where+` ORDER BY m.id, r.id`), args...)
	if err != nil {
		return nil, wrap("list the queue", err)
	}
	defer rows.Close()
	var out []queue.Entry
	for rows.Next() {
		var e queue.Entry
		var r queue.Recipient
		var created, next int64
		if err := rows.Scan(&e.Message.ID, &e.Message.MemberID, &e.Message.AppPasswordID, &e.Message.From, &e.Message.SMTPUTF8, &e.Message.EightBit, &created, &e.Size,
			&r.ID, &r.MessageID, &r.Address, &r.Domain, &r.Held, &r.Attempts, &next, &r.LastError, &r.DelayNotified); err != nil {
			return nil, wrap("list the queue", err)
		}
		e.Message.CreatedAt, r.NextAttempt = fromMicros(created), fromMicros(next)
		if n := len(out); n > 0 && out[n-1].Message.ID == e.Message.ID {
			out[n-1].Recipients = append(out[n-1].Recipients, r)
			continue
		}
		e.Recipients = []queue.Recipient{r}
		out = append(out, e)
	}
	return out, wrap("list the queue", rows.Err())
}

// QueueAct implements queue.Store.
func (q *Queue) QueueAct(ctx context.Context, act queue.Action, ids []int64, now time.Time) (int, error) {
	return q.QueueActAudited(ctx, act, ids, now, account.Effects{})
}

// QueueActAudited is QueueAct writing fx (the operator's audit entry) in
// its transaction when the action changed a recipient.
func (q *Queue) QueueActAudited(ctx context.Context, act queue.Action, ids []int64, now time.Time, fx account.Effects) (int, error) {
	db := q.db
	sel := ""
	if len(ids) > 0 {
		sel = ` WHERE message_id IN (` + placeholders(len(ids)) + `)`
	}
	args := int64Args(ids)
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		switch act {
		case queue.Retry:
			res, err = tx.ExecContext(ctx, db.q(`UPDATE queue_recipients SET next_attempt = ?`+sel), append([]any{micros(now)}, args...)...)
		case queue.Hold:
			res, err = tx.ExecContext(ctx, db.q(`UPDATE queue_recipients SET held = TRUE`+sel), args...)
		case queue.Release:
			res, err = tx.ExecContext(ctx, db.q(`UPDATE queue_recipients SET held = FALSE, next_attempt = ?`+sel), append([]any{micros(now)}, args...)...)
		case queue.Delete:
			if res, err = tx.ExecContext(ctx, db.q(`DELETE FROM queue_recipients`+sel), args...); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `DELETE FROM queue_messages WHERE NOT EXISTS (SELECT 1 FROM queue_recipients WHERE message_id = queue_messages.id)`)
		default:
			return fmt.Errorf("unknown queue action %q", act)
		}
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return db.writeEffects(ctx, tx, fx)
	})
	return int(n), wrap("queue "+string(act), err)
}

// QueueStats implements queue.Store.
func (q *Queue) QueueStats(ctx context.Context) (queue.Stats, error) {
	var s queue.Stats
	var held sql.NullInt64
	var oldest sql.NullInt64
	err := q.db.SQL.QueryRowContext(ctx, `SELECT COUNT(*), SUM(CASE WHEN held THEN 1 ELSE 0 END),
		(SELECT MIN(created_at) FROM queue_messages) FROM queue_recipients`).Scan(&s.Recipients, &held, &oldest)
	s.Held = int(held.Int64)
	if oldest.Valid {
		s.Oldest = fromMicros(oldest.Int64)
	}
	return s, wrap("queue figures", err)
}
