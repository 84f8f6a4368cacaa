package sqlstore_test

import (
	"testing"

	"github.com/postern/postern/internal/store/storetest"
)

// The account conformance suite, on each engine: both must behave alike.
func TestAccountSQLite(t *testing.T)   { storetest.RunAccount(t, storetest.OpenSQLite) }
func TestAccountPostgres(t *testing.T) { storetest.RunAccount(t, storetest.OpenPostgres) }
