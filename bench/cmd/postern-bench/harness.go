package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// stopOnInterrupt stops the servers (stop) and exits when the harness is
// interrupted (Ctrl-C, SIGTERM), so that no server outlives it; the
// returned function ends the watch.
func stopOnInterrupt(stop func()) func() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sig; ok {
			fmt.Println("interrupted: stopping the servers")
			stop()
			os.Exit(1)
		}
	}()
	return func() { signal.Stop(sig) }
}

// startPosterns calls start for postern-sqlite (dsn "": SQLite in the work
// folder) and postern-postgres (a fresh schema of pg), each when targets
// names it and a postern binary is given. The returned function drops the
// schema.
func startPosterns(ctx context.Context, postern, pg, schema string, targets map[string]bool, start func(name, dsn string) error) (func(), error) {
	drop := func() {}
	if postern == "" {
		return drop, nil
	}
	if targets["postern-sqlite"] {
		if err := start("postern-sqlite", ""); err != nil {
			return drop, err
		}
	}
	if pg != "" && targets["postern-postgres"] {
		dsn, err := freshSchema(ctx, pg, schema)
		if err != nil {
			return drop, err
		}
		drop = func() { dropSchema(pg, schema) }
		if err := start("postern-postgres", dsn); err != nil {
			return drop, err
		}
	}
	return drop, nil
}
