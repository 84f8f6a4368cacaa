package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/postern/postern/internal/account"
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
