package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/events"
	"github.com/postern/postern/internal/imapserver"
	"github.com/postern/postern/internal/passhash"
	"github.com/postern/postern/internal/pop3server"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/tlsconf"
)

// profileCmd serves IMAP and POP3 wired as postern serve wires them (store,
// account service, auth gateway with its in-memory throttle, event bus and
// tailer, info logs to a file) and writes a CPU profile, and a heap profile,
// when it is stopped: the tool that found the hot spots of issue 6.
//
//	postern-bench profile --data DIR --cpuprofile cpu.out &
//	postern-bench load --addr ADDR --proto imap -c 16 -d 10s
//	kill %1; go tool pprof -top cpu.out
func profileCmd(args []string) error {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	data := fs.String("data", "", "data folder seeded by postern-bench seed (postern.db, secret.key)")
	dsn := fs.String("database", "", "postgres:// URL instead of DATA/postern.db")
	cpu := fs.String("cpuprofile", "cpu.out", "CPU profile")
	heap := fs.String("memprofile", "", "heap profile written at the end")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raiseFileLimit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	key, err := os.ReadFile(filepath.Join(*data, "secret.key"))
	if err != nil {
		return err
	}
	if *dsn == "" {
		*dsn = filepath.Join(*data, "postern.db")
	}
	db, err := sqlstore.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	// As postern serve does at start: every member's credentials in memory.
	if _, err := db.WarmCredentials(ctx); err != nil {
		return err
	}
	lf, err := os.Create(filepath.Join(*data, "profile.log"))
	if err != nil {
		return err
	}
	defer lf.Close()
	log := slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	svc := account.NewService(db, passhash.New(passhash.Default), account.Config{Key: key})
	svc.Log = log
	bus := events.NewBus()
	gw, err := auth.New(auth.Config{Service: svc, Store: db, Bus: bus, Key: key, Log: log})
	if err != nil {
		return err
	}
	defer gw.Close()
	tailer := &events.Tailer{Store: db, Bus: bus, Log: log, Wake: db.Listen(ctx)}
	go tailer.Run(ctx)
	<-tailer.Ready()
	imap := imapserver.New(imapserver.Config{Auth: gw, Mail: db.Mail(), Bus: bus, Plaintext: tlsconf.PlaintextAlways, Log: log})
	pop3 := pop3server.New(pop3server.Config{Auth: gw, Mail: db.Mail(), Plaintext: tlsconf.PlaintextAlways, Log: log})
	li, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	lp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go imap.Serve(li, false)
	go pop3.Serve(lp, false)
	f, err := os.Create(*cpu)
	if err != nil {
		return err
	}
	pprof.StartCPUProfile(f)
	fmt.Printf("listening imap %s\nlistening pop3 %s\nready\n", li.Addr(), lp.Addr())
	<-ctx.Done()
	pprof.StopCPUProfile()
	f.Close()
	if *heap != "" {
		runtime.GC()
		if hf, err := os.Create(*heap); err == nil {
			pprof.WriteHeapProfile(hf)
			hf.Close()
		}
		if gf, err := os.Create(*heap + ".goroutines"); err == nil {
			pprof.Lookup("goroutine").WriteTo(gf, 1)
			gf.Close()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(os.Stderr, "goroutines %d, heap in use %d KiB, stacks in use %d KiB, sys %d KiB\n",
			runtime.NumGoroutine(), ms.HeapInuse>>10, ms.StackInuse>>10, ms.Sys>>10)
	}
	imap.Close()
	pop3.Close()
	return nil
}

// loadCmd runs one throughput measurement against addr and prints it.
func loadCmd(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	addr := fs.String("addr", "", "server address")
	proto := fs.String("proto", "imap", "imap or pop3")
	c := fs.Int("c", 16, "clients")
	d := fs.Duration("d", 5*time.Second, "duration")
	n := fs.Int("members", 1000, "members to log in as (the seeded population)")
	idleN := fs.Int("idle", 0, "instead: open this many IDLE connections, print, and hold them until interrupted")
	flood := fs.Int("flood", 0, "meanwhile, this many clients log in with wrong main passwords (members of the second half)")
	from := fs.Int("in-turn-from", -1, "instead of each client its stride: all clients take the members in turn from this one (as the scale figure does)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raiseFileLimit()
	us := users(0, *n)
	if *idleN > 0 {
		s, err := openIdle(*addr, us, *idleN, 1000)
		if err != nil {
			return err
		}
		fmt.Printf("%d connections in IDLE\n", *idleN)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
		s.close()
		return nil
	}
	if *flood > 0 {
		stop := startFlood(*addr, users(*n/2, *n), *flood, 1<<20)
		defer func() { fmt.Printf("flood: %.1f failed logins/s\n", stop()) }()
		us = us[:*n/2]
		time.Sleep(time.Second)
	}
	cycle := loginCycle(*proto, *addr, us, srcIP)
	if *from >= 0 {
		var next atomic.Int64
		next.Store(int64(*from))
		cycle = loginInTurn(*proto, *addr, us, srcIP, &next)
	}
	r := runLoad(*c, *d, cycle)
	fmt.Printf("%s c=%d: %.0f cycles/s, p50 %.2f ms, p99 %.2f ms, %d errors\n", *proto, *c, r.Rate, r.P50, r.P99, r.Errors)
	return nil
}
