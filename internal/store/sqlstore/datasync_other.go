//go:build !linux

package sqlstore

import "os"

// datasync flushes f to disk (on macOS with F_FULLFSYNC, as os.File.Sync
// does there).
func datasync(f *os.File) error { return f.Sync() }
