package sqlstore_test

import (
	"testing"

	"github.com/postern/postern/internal/store/storetest"
)

func TestAuditSQLite(t *testing.T)   { storetest.RunAudit(t, storetest.OpenSQLite) }
func TestAuditPostgres(t *testing.T) { storetest.RunAudit(t, storetest.OpenPostgres) }
