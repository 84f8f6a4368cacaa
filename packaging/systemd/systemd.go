// Package systemd holds the unit that runs Postern under systemd, so that
// the binary prints (postern quickstart) the very file the source tree and
// the release archive install: one copy, checked by test/e2e.
package systemd

import _ "embed"

// Unit is postern.service.
//
//go:embed postern.service
var Unit string
