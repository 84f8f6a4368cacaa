package sqlstore_test

import (
	"testing"

	"github.com/postern/postern/internal/store/storetest"
)

func TestDAVStore(t *testing.T) {
	for _, e := range storetest.AllEngines {
		t.Run(e.Name, func(t *testing.T) { storetest.RunDAV(t, e.Open) })
	}
}
