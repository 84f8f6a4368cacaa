package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/postern/postern/internal/buildinfo"
)

// versionCmd prints which build this is; it opens no database, so it works
// before any configuration exists.
func versionCmd(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print {"version","revision","time","modified","go","platform"}`)
	return func(ctx context.Context, a *app, args []string) error {
		in := buildinfo.Read()
		if *asJSON {
			return writeJSON(a.stdout, in)
		}
		_, err := fmt.Fprintln(a.stdout, in)
		return err
	}
}

// isVersionFlag reports a bare `postern --version`.
func isVersionFlag(flags []string) bool {
	return len(flags) == 1 && (flags[0] == "--version" || flags[0] == "-version")
}
