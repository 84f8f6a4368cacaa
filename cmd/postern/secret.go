package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// secretKeySize is the size of a generated HMAC key: as long as SHA-256's output.
const secretKeySize = 32

// loadSecret returns the HMAC key of app passwords: the bytes of the file at
// path, at least 32 of them. The key never goes into the database, so a
// stolen database dump does not allow checking guesses of app passwords.
//
// When the file is missing and create is set (the default path in the data
// folder) a new random key is written, 0600. A file named with --secret-file
// must exist: a node that silently made its own key would refuse every app
// password created on the other nodes.
func loadSecret(path string, create bool, log *slog.Logger) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		if err := createSecret(path); err != nil {
			return nil, err
		}
		log.Info("generated a new app-password secret key", "file", path)
		key, err = os.ReadFile(path)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, failf("the secret key file %s does not exist; create it with: head -c 32 /dev/urandom > %s && chmod 600 %s", path, path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read the secret key: %w", err)
	}
	if len(key) < secretKeySize {
		return nil, failf("the secret key file %s is too short: it needs at least %d bytes", path, secretKeySize)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the secret key file is readable by other users; chmod 600 it", "file", path, "mode", fi.Mode().Perm().String())
	}
	return key, nil
}

// createSecret writes a new random key to path without ever exposing a
// partial file: it is written to a temporary file and linked into place, and
// the link fails if another process created the key first (then that key wins).
func createSecret(path string) error {
	key := make([]byte, secretKeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generate the secret key: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".secret-*")
	if err != nil {
		return fmt.Errorf("create the secret key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(key)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create the secret key: %w", err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create the secret key: %w", err)
	}
	return nil
}
