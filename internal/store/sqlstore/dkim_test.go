package sqlstore_test

import (
	"testing"

	"github.com/postern/postern/internal/store/storetest"
)

// The DKIM key store's suite, on each engine.
func TestDKIMSQLite(t *testing.T)   { storetest.RunDKIM(t, storetest.OpenSQLite) }
func TestDKIMPostgres(t *testing.T) { storetest.RunDKIM(t, storetest.OpenPostgres) }
