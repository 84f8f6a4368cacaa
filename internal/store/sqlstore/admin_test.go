package sqlstore_test

import (
	"testing"

	"github.com/postern/postern/internal/store/storetest"
)

func TestAdminSQLite(t *testing.T)   { storetest.RunAdmin(t, storetest.OpenSQLite) }
func TestAdminPostgres(t *testing.T) { storetest.RunAdmin(t, storetest.OpenPostgres) }
