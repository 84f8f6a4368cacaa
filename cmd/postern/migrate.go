package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/postern/postern/internal/store/sqlstore"
)

// migrateCmd applies the pending migrations (every command does so when it
// opens the database; this one does only that), or with --status lists them
// without changing anything, so an operator can see what an upgrade will do
// before starting the new binary.
func migrateCmd(a *app, fs *flag.FlagSet) runFunc {
	status := fs.Bool("status", false, "list the migrations, applied and pending, and change nothing")
	asJSON := fs.Bool("json", false, `print [{"name","applied","applied_at","unknown"}]`)
	return func(ctx context.Context, a *app, args []string) error {
		if !*status {
			if _, err := a.open(ctx); err != nil {
				return err
			}
		}
		list, err := a.migrationStatus(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, list)
		}
		rows := [][]string{{"MIGRATION", "STATE", "APPLIED AT"}}
		pending, unknown := 0, 0
		for _, m := range list {
			state := "applied"
			switch {
			case m.Unknown:
				state, unknown = "unknown (a newer Postern's)", unknown+1
			case !m.Applied:
				state, pending = "pending", pending+1
			}
			rows = append(rows, []string{m.Name, state, m.AppliedAt})
		}
		if err := table(a.stdout, rows); err != nil {
			return err
		}
		switch {
		case unknown > 0:
			fmt.Fprintf(a.stdout, "\nThe database was migrated by a newer Postern: run that version, or restore the backup taken before the upgrade.\n")
		case pending > 0:
			fmt.Fprintf(a.stdout, "\n%d pending: they apply when postern serve (or postern migrate) next starts. Back up first.\n", pending)
		default:
			fmt.Fprintf(a.stdout, "\nThe database is up to date.\n")
		}
		return nil
	}
}

// migrationStatus reads the database's migrations without migrating it. A
// SQLite file that does not exist yet has every migration pending (and is
// not created).
func (a *app) migrationStatus(ctx context.Context) ([]sqlstore.Migration, error) {
	dsn := a.dsn()
	if a.database == "" {
		if _, err := os.Stat(dsn); os.IsNotExist(err) {
			return sqlstore.PendingMigrations()
		}
	}
	db, err := sqlstore.OpenUnmigrated(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open the database: %w", err)
	}
	defer db.Close()
	return db.MigrationStatus(ctx)
}
