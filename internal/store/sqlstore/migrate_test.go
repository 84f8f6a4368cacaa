package sqlstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// TestMigrationStatus: a migrated database lists every migration applied;
// one taken back out shows pending without OpenUnmigrated applying it; a
// migration only a newer Postern knows is listed as unknown and makes Open
// refuse the database before writing anything.
func TestMigrationStatus(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		list, err := db.MigrationStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) < 20 {
			t.Fatalf("only %d migrations listed", len(list))
		}
		last := list[len(list)-1]
		for _, m := range list {
			if !m.Applied || m.Unknown || m.AppliedAt == "" {
				t.Errorf("fresh database: %+v", m)
			}
		}
		if _, err := db.SQL.ExecContext(ctx, `DELETE FROM schema_migrations WHERE name = '`+last.Name+`'`); err != nil {
			t.Fatal(err)
		}
		raw, err := sqlstore.OpenUnmigrated(ctx, db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		list, err = raw.MigrationStatus(ctx)
		raw.Close()
		if err != nil || list[len(list)-1].Name != last.Name || list[len(list)-1].Applied {
			t.Fatalf("after removing %s: %+v, %v", last.Name, list[len(list)-1], err)
		}
		if _, err := db.SQL.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES ('9999_from_the_future.sql', '2030-01-01T00:00:00Z'), ('`+last.Name+`', '2026-01-01T00:00:00Z')`); err != nil {
			t.Fatal(err)
		}
		list, err = db.MigrationStatus(ctx)
		if err != nil || !list[len(list)-1].Unknown || list[len(list)-1].Name != "9999_from_the_future.sql" {
			t.Fatalf("newer migration: %+v, %v", list[len(list)-1], err)
		}
		if re, err := sqlstore.Open(ctx, db.DSN); !errors.Is(err, sqlstore.ErrNewerSchema) {
			if re != nil {
				re.Close()
			}
			t.Fatalf("Open of a newer schema: %v", err)
		}
	})
}

func TestPendingMigrationsListsEverythingUnapplied(t *testing.T) {
	list, err := sqlstore.PendingMigrations()
	if err != nil || len(list) < 20 {
		t.Fatalf("%d, %v", len(list), err)
	}
	for _, m := range list {
		if m.Applied {
			t.Errorf("%+v", m)
		}
	}
}
