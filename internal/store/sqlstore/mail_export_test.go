package sqlstore

import (
	"context"

	"github.com/postern/postern/internal/account"
)

// WriteEffectsForTest writes fx with writeEffects in a transaction of its
// own, which it rolls back instead of committing when rollback is set.
func (db *DB) WriteEffectsForTest(ctx context.Context, fx account.Effects, rollback bool) error {
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := db.writeEffects(ctx, tx, fx); err != nil {
		tx.Rollback()
		return err
	}
	if rollback {
		return tx.Rollback()
	}
	return tx.Commit()
}
