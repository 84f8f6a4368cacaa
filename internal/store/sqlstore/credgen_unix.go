//go:build unix

package sqlstore

import (
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// genSlots is the number of change counters in the generation file: members
// share a counter when their IDs are equal modulo genSlots, which costs them
// no more than a needless re-read.
const (
	genSlots     = 4096
	genSupported = true
)

// genFile is the generation file: 64-bit change counters per member (genSlots
// for credentials, genSlots for mail: inboxcache.go) in a small file beside
// the SQLite database, mapped into the memory of every
// process that opens the database (postern serve, the CLI, other tools), as
// SQLite maps its own -shm file. A process that changes what Credentials
// returns for a member adds one to the member's counter just before and
// just after its commit; a process that caches Credentials remembers the
// counter it read before its query and trusts the copy only while the
// counter has not moved. Reading a counter is a memory load, so a cached
// login costs no system call at all, yet a change committed by any process
// on the machine is seen by the very next login.
type genFile struct {
	f *os.File

	mu  sync.RWMutex // held for reading by every access, so Close cannot unmap under one
	mem []byte       // nil once closed
}

// openGenFile opens or creates the generation file of the database at db.
func openGenFile(db string) (*genFile, error) {
	path := db + "-gen"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	// As SQLite does for its -wal and -shm files: a file made by root (an
	// administrator's CLI command) belongs to the database's owner, so that
	// the server running as that user can still open it.
	if os.Geteuid() == 0 {
		if st, err := os.Stat(db); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				f.Chown(int(sys.Uid), int(sys.Gid))
			}
		}
	}
	const size = 2 * genSlots * 8 // credential counters, then mail counters
	st, err := f.Stat()
	if err == nil && st.Size() < size {
		// Growing with zeros is what every process would do; it never
		// shrinks a file another process has mapped.
		err = f.Truncate(size)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	return &genFile{f: f, mem: mem}, nil
}

// slot returns the credential counter of member id.
func (g *genFile) slot(id int64) int { return int(uint64(id) % genSlots) }

// mailSlot returns the mail counter of member id (inboxcache.go).
func (g *genFile) mailSlot(id int64) int { return genSlots + int(uint64(id)%genSlots) }

// counter returns the address of counter s; the mapping is page-aligned, so
// every counter is 8-byte aligned as the atomic operations require.
func (g *genFile) counter(s int) *uint64 { return (*uint64)(unsafe.Pointer(&g.mem[s*8])) }

// load returns counter s; once closed, a value no entry holds.
func (g *genFile) load(s int) uint64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.mem == nil {
		return math.MaxUint64
	}
	return atomic.LoadUint64(g.counter(s))
}

// bump adds one to counter s.
func (g *genFile) bump(s int) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.mem != nil {
		atomic.AddUint64(g.counter(s), 1)
	}
}

// snapshot returns every credential counter, for a scan of every member.
func (g *genFile) snapshot() []uint64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]uint64, genSlots)
	if g.mem != nil {
		for s := range out {
			out[s] = atomic.LoadUint64(g.counter(s))
		}
	}
	return out
}

func (g *genFile) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mem == nil {
		return nil
	}
	err := syscall.Munmap(g.mem)
	g.mem = nil
	if cerr := g.f.Close(); err == nil {
		err = cerr
	}
	return err
}
