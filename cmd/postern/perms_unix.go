//go:build unix

package main

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// privateUmask makes everything the process creates private to its user:
// files at most 0600, folders 0700. The data folder holds the database
// (password hashes, mail), the secret key and the TLS key; SQLite creates
// its -wal and -shm files itself (0644 less the umask), and a library may
// create a file that no explicit mode in Postern covers. The explicit 0600
// and 0700 modes stay too, for code that runs without this umask (tests,
// other programs using the packages).
func privateUmask() { syscall.Umask(0o077) }

// tightenModes removes the group and other permission bits of the data
// folder and of every file and folder in it, warning about each: a folder
// made by an older Postern, by hand, or restored from a backup with looser
// modes becomes private at the next start rather than staying readable by
// every local user. Symbolic links are left alone (chmod would follow
// them out of the folder). Errors are warnings too: a file that cannot be
// changed (another owner) must not stop the server.
func tightenModes(dir string, log *slog.Logger) {
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			log.Warn("cannot check the mode of a file in the data folder", "file", path, "err", err)
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		mode := info.Mode()
		if mode.Perm()&0o077 == 0 {
			return nil
		}
		// Setuid, setgid and sticky bits are kept as they were.
		next := mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) | mode.Perm()&^0o077
		if err := os.Chmod(path, next); err != nil {
			log.Warn("the data folder holds a file other users can read; chmod go-rwx it", "file", path, "mode", mode.Perm().String(), "err", err)
			return nil
		}
		log.Warn("tightened the mode of a file in the data folder: other users could read it", "file", path, "was", mode.Perm().String(), "now", next.Perm().String())
		return nil
	})
}
