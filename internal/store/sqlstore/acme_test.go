package sqlstore_test

import (
	"testing"

	"github.com/postern/postern/internal/store/storetest"
)

// The ACME object and lease store's suite, on each engine.
func TestACMESQLite(t *testing.T)   { storetest.RunACME(t, storetest.OpenSQLite) }
func TestACMEPostgres(t *testing.T) { storetest.RunACME(t, storetest.OpenPostgres) }
