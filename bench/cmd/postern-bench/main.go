// Command postern-bench measures Postern against Dovecot and a null server
// on one machine (issue 6): login throughput and latency, memory per idle
// IMAP connection, revocation latency, a flood of wrong main passwords, and
// the cost of 100,000 members. bench/run.sh installs Dovecot, writes its
// configurations and runs
//
//	postern-bench run --postern BIN --dovecot-installed CONF ... --doc docs/benchmarks.md
//
// Subcommands:
//
//	run         the benchmark (see runFlags); --quick for development
//	null        the null server (bench/nullserver) on --imap-addr and --pop3-addr
//	passwd      Dovecot's passwd-file for members [0, N) (SHA256 scheme)
//	seed        bulk-seed a Postern database (SQLite path or postgres:// URL)
//	profile     IMAP and POP3 wired as postern serve, with CPU and heap profiles
//	load        one throughput measurement, or N connections held in IDLE
//	smtp        one MX load: N senders delivering messages over SMTP
//	mx          the MX benchmark: Postern against Postfix → Dovecot LMTP (bench/mx.sh)
//	send        the sending benchmark: submission → queue → a null SMTP sink, Postern against Postfix (bench/send.sh)
//
// Timings are printed and written to the results, never asserted.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/postern/postern/bench/nullserver"
)

func main() {
	if err := dispatch(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "postern-bench:", err)
		os.Exit(1)
	}
}

func dispatch(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: postern-bench run|mx|send|imap|null|passwd|seed|profile|load|smtp [flags]")
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:])
	case "null":
		return nullCmd(args[1:])
	case "passwd":
		return passwdCmd(args[1:])
	case "seed":
		return seedCmd(args[1:])
	case "profile":
		return profileCmd(args[1:])
	case "load":
		return loadCmd(args[1:])
	case "smtp":
		return smtpCmd(args[1:])
	case "mx":
		return mxCmd(args[1:])
	case "send":
		return sendCmd(args[1:])
	case "imap":
		return imapCmd(args[1:])
	}
	return fmt.Errorf("unknown subcommand %q", args[0])
}

// nullCmd runs the null server and prints "listening imap ADDR",
// "listening pop3 ADDR", "listening smtp ADDR" (and "listening stats ADDR"
// with --stats-addr) and "ready" as postern serve does.
func nullCmd(args []string) error {
	fs := flag.NewFlagSet("null", flag.ContinueOnError)
	imapAddr := fs.String("imap-addr", "127.0.0.1:0", "IMAP address")
	pop3Addr := fs.String("pop3-addr", "127.0.0.1:0", "POP3 address")
	smtpAddr := fs.String("smtp-addr", "127.0.0.1:0", "SMTP (null MX) address")
	statsAddr := fs.String("stats-addr", "", "HTTP address answering GET /stats with the SMTP counts as JSON (empty: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raiseFileLimit()
	s := nullserver.New()
	// Sockets set up as postern serve sets up its mail listeners' (no TCP
	// keep-alive, cmd/postern/serve.go): the yardstick pays no system call
	// that Postern does not.
	lc := net.ListenConfig{KeepAlive: -1}
	li, err := lc.Listen(context.Background(), "tcp", *imapAddr)
	if err != nil {
		return err
	}
	lp, err := lc.Listen(context.Background(), "tcp", *pop3Addr)
	if err != nil {
		return err
	}
	ls, err := lc.Listen(context.Background(), "tcp", *smtpAddr)
	if err != nil {
		return err
	}
	go s.ServeIMAP(li)
	go s.ServePOP3(lp)
	go s.ServeSMTP(ls)
	fmt.Printf("listening imap %s\nlistening pop3 %s\nlistening smtp %s\n", li.Addr(), lp.Addr(), ls.Addr())
	if *statsAddr != "" {
		lh, err := net.Listen("tcp", *statsAddr)
		if err != nil {
			return err
		}
		go http.Serve(lh, statsHandler(s))
		fmt.Printf("listening stats %s\n", lh.Addr())
	}
	fmt.Println("ready")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return s.Close()
}

// passwdCmd writes Dovecot's passwd-file for members [0, N): the member's
// first app password in the SHA256 scheme, base64 of SHA-256 (Dovecot's
// password schemes), and the uid/gid/home that its mail processes use.
func passwdCmd(args []string) error {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	n := fs.Int("n", 1000, "members")
	uid := fs.Int("uid", 65534, "uid of the mail processes")
	gid := fs.Int("gid", 65534, "gid of the mail processes")
	home := fs.String("home", "/tmp/dovecot-bench/home", "home folders are HOME/EMAIL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for i := 0; i < *n; i++ {
		sum := sha256.Sum256([]byte(appPassword(i, 0)))
		fmt.Printf("%s:{SHA256}%s:%d:%d::%s/%s\n", emailOf(i), base64.StdEncoding.EncodeToString(sum[:]), *uid, *gid, *home, emailOf(i))
	}
	return nil
}

// seedCmd bulk-seeds a Postern database.
func seedCmd(args []string) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	dsn := fs.String("db", "", "SQLite file or postgres:// URL")
	keyFile := fs.String("secret-file", "", "the HMAC key file (created when missing)")
	n := fs.Int("n", 1000, "members")
	per := fs.Int("per-member", 5, "app passwords per member")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dsn == "" || *keyFile == "" {
		return fmt.Errorf("seed needs --db and --secret-file")
	}
	key, err := writeKey(*keyFile)
	if err != nil {
		return err
	}
	d, err := seed(context.Background(), *dsn, key, *n, *per, 0)
	if err != nil {
		return err
	}
	fmt.Printf("seeded %d members × %d app passwords in %s\n", *n, *per, d)
	return nil
}

// raiseFileLimit raises RLIMIT_NOFILE to its hard limit: 10,000 idle
// connections need as many descriptors on each side.
func raiseFileLimit() {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur < r.Max {
		r.Cur = r.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
}
