//go:build !unix

package sqlstore

import "errors"

const (
	genSlots     = 1
	genSupported = false
)

// genFile needs shared memory mappings; elsewhere the credential cache is off
// (see credgen_unix.go).
type genFile struct{}

func openGenFile(string) (*genFile, error) {
	return nil, errors.New("no shared memory mapping on this system")
}

func (g *genFile) slot(int64) int     { return 0 }
func (g *genFile) mailSlot(int64) int { return 0 }
func (g *genFile) load(int) uint64    { return 0 }
func (g *genFile) bump(int)           {}
func (g *genFile) close() error       { return nil }
func (g *genFile) snapshot() []uint64 { return make([]uint64, genSlots) }
