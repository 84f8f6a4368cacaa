package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startNull starts the null server as a child process of this program, so
// that its memory and CPU are its own.
func startNull(work string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "null")
	cmd.Env = append(os.Environ(), childEnv+"=null")
	return startListing("null", cmd, filepath.Join(work, "null.log"))
}

// childEnv makes a test binary act as the null server (see TestMain).
const childEnv = "POSTERN_BENCH_CHILD"

// posternOpts starts one postern serve.
type posternOpts struct {
	bin, data, database, secretFile string
	web                             bool // also the web listener (revocation uses the JSON API)
	extra                           []string
	env                             []string // added to the environment
}

func startPostern(name string, o posternOpts, work string) (*proc, error) {
	args := []string{"serve", "--data", o.data,
		"--imap-addr", "127.0.0.1:0", "--pop3-addr", "127.0.0.1:0",
		"--imaps-addr", "", "--pop3s-addr", "", "--submission-addr", "", "--submissions-addr", "", "--metrics-addr", "",
		"--plaintext-auth", "always"}
	if o.web {
		args = append(args, "--web-addr", "127.0.0.1:0")
	} else {
		args = append(args, "--web-addr", "")
	}
	if o.database != "" {
		args = append(args, "--database", o.database)
	}
	if o.secretFile != "" {
		args = append(args, "--secret-file", o.secretFile)
	}
	args = append(args, o.extra...)
	cmd := exec.Command(o.bin, args...)
	cmd.Env = append(os.Environ(), o.env...)
	return startListing(name, cmd, filepath.Join(work, name+".log"))
}

// dovecotOpts starts one Dovecot master on a configuration written by run.sh.
type dovecotOpts struct {
	bin, conf  string
	imap, pop3 string // the addresses the configuration listens on
	lmtp       string // or the unix socket of its LMTP
}

func startDovecot(name string, o dovecotOpts, work string) (*proc, error) {
	lf, err := os.Create(filepath.Join(work, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.bin, "-F", "-c", o.conf)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Its own process group (a tree to measure and to kill), and SIGTERM
	// should the harness die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, addr: map[string]string{"imap": o.imap, "pop3": o.pop3}}
	p.pid = func() int { return cmd.Process.Pid }
	p.stop = func() error { return stopProcess(cmd, lf) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wait [][2]string
	for _, a := range []string{o.imap, o.pop3} {
		if a != "" {
			wait = append(wait, [2]string{"tcp", a})
		}
	}
	if o.lmtp != "" {
		p.addr = map[string]string{"lmtp": o.lmtp}
		wait = [][2]string{{"unix", o.lmtp}}
	}
	for _, w := range wait {
		a := w[1]
		for {
			c, err := net.DialTimeout(w[0], a, time.Second)
			if err == nil {
				g := make([]byte, 3)
				c.SetDeadline(time.Now().Add(5 * time.Second))
				_, err = c.Read(g)
				c.Close()
			}
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				p.stop()
				return nil, fmt.Errorf("%s does not answer on %s: %v; see %s", name, a, err, lf.Name())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return p, nil
}

// parseDovecot reads NAME=CONF,IMAPADDR,POP3ADDR.
func parseDovecot(s string) (name string, o dovecotOpts, err error) {
	name, rest, ok := strings.Cut(s, "=")
	f := strings.Split(rest, ",")
	if !ok || len(f) != 3 {
		return "", o, fmt.Errorf("--dovecot wants NAME=CONF,IMAPADDR,POP3ADDR, not %q", s)
	}
	return name, dovecotOpts{conf: f[0], imap: f[1], pop3: f[2]}, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
