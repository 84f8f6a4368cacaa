package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/postern/postern/internal/authrec"
)

// The shared login penalties (authrec.PenaltyStore) live on PostgreSQL only:
// they exist for several nodes, and a single SQLite node keeps them in memory.
var _ authrec.PenaltyStore = (*DB)(nil)

var errPenaltiesPostgres = errors.New("shared login penalties need PostgreSQL")

// inflightStale: an attempt is checked right after its start, so attempts
// counted in flight on a block whose last start is older than this were
// left by a node that died mid-attempt, and are ignored.
const inflightStale = time.Minute

// beginPenaltySQL schedules one attempt in one round trip. The row is locked
// (FOR UPDATE re-reads the newest version after waiting), the start computed
// as authrec.ThrottleConfig.Delay does: 0 up to Free failures, then
// Base·2^(n−Free−1) capped at Max; the UPDATE applies only when the start is
// within Backlog. A block without a recent failure matches no row.
//
// $1 key, $2 now, $3 Free, $4 Base, $5 Max, $6 forget before, $7 stale
// before, $8 Backlog (durations and times in µs).
const beginPenaltySQL = `
WITH locked AS (
	SELECT ip_key, next_at,
		failures + CASE WHEN next_at < $7::bigint THEN 0 ELSE inflight END AS n
	FROM auth_ip_penalties WHERE ip_key = $1 AND last_failure >= $6::bigint
	FOR UPDATE
), cur AS (
	SELECT ip_key, GREATEST(next_at, $2::bigint) + CASE WHEN n <= $3::int THEN 0
		ELSE LEAST($5::bigint, $4::bigint * (1::bigint << LEAST(n - $3::int - 1, 40))) END AS start
	FROM locked
), upd AS (
	UPDATE auth_ip_penalties p SET
		inflight = CASE WHEN p.next_at < $7::bigint THEN 1 ELSE p.inflight + 1 END,
		next_at = cur.start
	FROM cur WHERE p.ip_key = cur.ip_key AND cur.start - $2::bigint <= $8::bigint
	RETURNING 1
)
SELECT start, EXISTS (SELECT 1 FROM upd) FROM cur`

// BeginPenalty implements authrec.PenaltyStore.
func (db *DB) BeginPenalty(ctx context.Context, key string, now time.Time, cfg authrec.ThrottleConfig) (authrec.PenaltyStart, error) {
	if db.Dialect != Postgres {
		return authrec.PenaltyStart{}, errPenaltiesPostgres
	}
	var start int64
	var admitted bool
	err := db.SQL.QueryRowContext(ctx, beginPenaltySQL, key, micros(now), cfg.Free,
		cfg.Base.Microseconds(), cfg.Max.Microseconds(), micros(now.Add(-cfg.Forget)),
		micros(now.Add(-inflightStale)), cfg.Backlog.Microseconds()).Scan(&start, &admitted)
	if notFound(err) {
		return authrec.PenaltyStart{}, nil
	} else if err != nil {
		return authrec.PenaltyStart{}, fmt.Errorf("begin login penalty: %w", err)
	}
	return authrec.PenaltyStart{Found: true, Admitted: admitted, Start: fromMicros(start)}, nil
}

// failPenaltySQL counts one failure on two rows: the block's ($1) and the
// block's failures against one account ($7, for forgivePenaltySQL). A row
// forgotten (no failure since $4) starts afresh; a tag among the recent ones
// (a stale password retried) does not count again, as in Dovecot's penalty.
// Only the last $5 tags are kept.
//
// $1 key, $2 now, $3 tag, $4 forget before, $5 Recent, $6 attempts ended (0
// or 1), $7 account key.
const failPenaltySQL = `
INSERT INTO auth_ip_penalties AS p (ip_key, failures, inflight, next_at, last_failure, recent_tags)
VALUES ($1, 1, 0, 0, $2::bigint, ARRAY[$3::bytea]), ($7, 1, 0, 0, $2::bigint, ARRAY[$3::bytea])
ON CONFLICT (ip_key) DO UPDATE SET
	failures = CASE WHEN p.last_failure < $4::bigint THEN 1
		WHEN $3::bytea = ANY (p.recent_tags) THEN p.failures
		ELSE p.failures + 1 END,
	recent_tags = CASE WHEN p.last_failure < $4::bigint THEN ARRAY[$3::bytea]
		WHEN $3::bytea = ANY (p.recent_tags) THEN p.recent_tags
		ELSE (p.recent_tags || $3::bytea)[GREATEST(1, cardinality(p.recent_tags) + 2 - $5::int):] END,
	inflight = GREATEST(p.inflight - $6::int, 0),
	last_failure = $2::bigint`

// FailPenalty implements authrec.PenaltyStore.
func (db *DB) FailPenalty(ctx context.Context, key, acctKey string, pair authrec.PairTag, release bool, now time.Time, cfg authrec.ThrottleConfig) error {
	if db.Dialect != Postgres {
		return errPenaltiesPostgres
	}
	ended := 0
	if release {
		ended = 1
	}
	if _, err := db.SQL.ExecContext(ctx, failPenaltySQL, key, micros(now), pair[:],
		micros(now.Add(-cfg.Forget)), cfg.Recent, ended, acctKey); err != nil {
		return fmt.Errorf("count login penalty: %w", err)
	}
	return nil
}

// forgivePenaltySQL takes the account row's failures ($2) off the block's
// ($1) and ends one attempt in flight there; a block left with no failure
// is forgotten (last_failure 0: BeginPenalty finds no penalty, pruning
// deletes it).
const forgivePenaltySQL = `
WITH f AS (DELETE FROM auth_ip_penalties WHERE ip_key = $2 RETURNING failures),
n AS (SELECT COALESCE(sum(failures), 0)::int AS n FROM f)
UPDATE auth_ip_penalties p SET
	failures = GREATEST(p.failures - n.n, 0),
	inflight = GREATEST(p.inflight - 1, 0),
	last_failure = CASE WHEN p.failures - n.n <= 0 THEN 0 ELSE p.last_failure END
FROM n WHERE p.ip_key = $1`

// ForgivePenalty implements authrec.PenaltyStore.
func (db *DB) ForgivePenalty(ctx context.Context, key, acctKey string) error {
	if db.Dialect != Postgres {
		return errPenaltiesPostgres
	}
	if _, err := db.SQL.ExecContext(ctx, forgivePenaltySQL, key, acctKey); err != nil {
		return fmt.Errorf("forgive login penalty: %w", err)
	}
	return nil
}

// ReleasePenalty implements authrec.PenaltyStore.
func (db *DB) ReleasePenalty(ctx context.Context, key string) error {
	if db.Dialect != Postgres {
		return errPenaltiesPostgres
	}
	if _, err := db.SQL.ExecContext(ctx, `UPDATE auth_ip_penalties SET inflight = GREATEST(inflight - 1, 0) WHERE ip_key = $1`, key); err != nil {
		return fmt.Errorf("release login penalty: %w", err)
	}
	return nil
}

// PrunePenalties implements authrec.PenaltyStore.
func (db *DB) PrunePenalties(ctx context.Context, now time.Time, cfg authrec.ThrottleConfig) (int64, error) {
	if db.Dialect != Postgres {
		return 0, errPenaltiesPostgres
	}
	res, err := db.SQL.ExecContext(ctx, `DELETE FROM auth_ip_penalties WHERE last_failure < $1 AND next_at < $2`,
		micros(now.Add(-cfg.Forget)), micros(now.Add(-inflightStale)))
	if err != nil {
		return 0, fmt.Errorf("prune login penalties: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
