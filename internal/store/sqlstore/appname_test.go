package sqlstore_test

import (
	"context"
	"testing"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

func TestAppNameKey(t *testing.T) {
	same := [][]string{
		{"Thunderbird", "THUNDERBIRD", "thunderbird", "\u0422hunderbird", "\u0442hunderbird", "Thunderb\u0131rd",
			"\U0001d413hunderbird", "Thunderbird\u3164", "Thunder\u200bbird", "\uff34\uff48\uff55\uff4e\uff44\uff45\uff52\uff42\uff49\uff52\uff44"},
		{"mail", "rnail", "MAIL", "Mail", "mall"}, // mall: MAIL with I for l; the key errs on refusing
		{"Outlook", "0utlook", "\u041eutl\u043e\u043ek"},
		{"Apple Mail", "Apple  Mail", "Apple\u3000Mail"},
	}
	for _, group := range same {
		want := sqlstore.NameKeyForTest(group[0])
		for _, name := range group[1:] {
			if got := sqlstore.NameKeyForTest(name); got != want {
				t.Errorf("key of %q is %q, of %q is %q: want the same", name, got, group[0], want)
			}
		}
	}
	for _, pair := range [][2]string{{"Thunderbird", "Thunderbird 2"}, {"Thunderbird", "Thunderbolt"}, {"Apple Mail", "AppleMail"}} {
		if sqlstore.NameKeyForTest(pair[0]) == sqlstore.NameKeyForTest(pair[1]) {
			t.Errorf("%q and %q share a key", pair[0], pair[1])
		}
	}
}

// TestAppNameKeyMigration: the migration recomputes every name_key; names
// that collide under the new key both stay (the older keeps the plain
// key), and a new look-alike of either is refused.
func TestAppNameKeyMigration(t *testing.T) {
	for _, engine := range []struct {
		name string
		open func(testing.TB) *sqlstore.DB
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(engine.name, func(t *testing.T) {
			ctx := context.Background()
			db := engine.open(t)
			e := storetest.NewEnv(t, db)
			alice, bob := e.Enforced(t, "alice"), e.Enforced(t, "bob")
			first, _ := e.Create(t, alice, "Thunderbird")
			e.Create(t, bob, "Mail")
			// The rows as the lower-case key let them be: a look-alike of
			// alice's Thunderbird, created after it, and the old keys.
			for _, q := range []string{
				`INSERT INTO app_passwords (id, member_id, name, name_key, hash, created_at)
				 SELECT 'feedfacefeedface', member_id, '` + "\u0422hunderbird" + `', '` + "\u0442hunderbird" + `', hash, created_at + 1
				 FROM app_passwords WHERE name = 'Thunderbird'`,
				`UPDATE app_passwords SET name_key = 'thunderbird' WHERE name = 'Thunderbird'`,
				`UPDATE app_passwords SET name_key = 'mail' WHERE name = 'Mail'`,
				`DELETE FROM schema_migrations WHERE name = '0010_app_name_skeleton.go'`,
			} {
				if _, err := db.SQL.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			re, err := sqlstore.Open(ctx, db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer re.Close()
			keys := map[string]string{}
			rows, err := re.SQL.QueryContext(ctx, `SELECT id, name_key FROM app_passwords`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id, key string
				if err := rows.Scan(&id, &key); err != nil {
					t.Fatal(err)
				}
				keys[id] = key
			}
			rows.Close()
			tb := sqlstore.NameKeyForTest("Thunderbird")
			if keys[first.ID] != tb {
				t.Errorf("the older Thunderbird's key is %q, want %q", keys[first.ID], tb)
			}
			if want := tb + "\x01feedfacefeedface"; keys["feedfacefeedface"] != want {
				t.Errorf("the look-alike's key is %q, want %q", keys["feedfacefeedface"], want)
			}
			if len(keys) != 3 {
				t.Errorf("%d rows, want 3", len(keys))
			}
			re2 := storetest.NewEnv(t, re)
			for _, name := range []string{"THUNDERBIRD", "\u0422hunderbird", "\U0001d413hunderbird"} {
				_, _, err := re2.Svc.CreateAppPassword(ctx, alice, name, storetest.Web)
				storetest.WantCode(t, err, account.ECONFLICT)
			}
			_, _, err = re2.Svc.CreateAppPassword(ctx, bob, "MAIL", storetest.Web)
			storetest.WantCode(t, err, account.ECONFLICT)
		})
	}
}
