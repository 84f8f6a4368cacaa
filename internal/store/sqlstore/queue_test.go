package sqlstore_test

import (
	"testing"

	"github.com/postern/postern/internal/store/storetest"
)

func TestQueue(t *testing.T) {
	for _, e := range storetest.AllEngines {
		t.Run(e.Name, func(t *testing.T) { storetest.RunQueue(t, e.Open) })
	}
}
