//go:build !unix

package main

import "log/slog"

// Elsewhere file modes are not Unix permission bits; the data folder's
// access is the operating system's ACLs' business.
func privateUmask() {}

func tightenModes(string, *slog.Logger) {}
