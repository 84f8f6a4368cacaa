// Package postfix runs a private instance of Debian's Postfix on loopback,
// for the end-to-end tests and the MX benchmark: its own configuration,
// queue and data directories in one folder, an smtpd on a chosen port, and
// whatever main.cf lines the caller adds (a relayhost, a virtual_transport to
// LMTP). Nothing of the system's Postfix (/etc/postfix, /var/spool/postfix) is
// read or written, and the instance's master runs as a child of the caller
// (postfix start-fg), so that stopping it leaves no process behind.
//
// Postfix wants root to start (its master binds as root and its daemons run as
// mail_owner): the caller must be root, and the postfix package installed
// (which creates the postfix user and the postdrop group).
//
// postmulti, Postfix's own way to a second instance, registers it in the
// default instance's main.cf (multi_instance_directories): it would write
// /etc/postfix. Root may run "postfix -c DIR" on any directory without that;
// only the set-gid programs (postdrop, postqueue, hence sendmail) insist on
// the directory being listed in alternate_config_directories, so mail enters
// an instance by SMTP only.
package postfix

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Config describes an instance.
type Config struct {
	// Dir is the instance's folder (created): etc/ holds main.cf and
	// master.cf, spool/ the queue, data/ Postfix's data, postfix.log its log.
	// Every folder above it must be searchable by the postfix user.
	Dir string
	// SMTPAddr is the address of its smtpd ("127.0.0.1:2525"); empty picks a
	// free port on 127.0.0.1.
	SMTPAddr string
	// Hostname is myhostname; it must differ from the greeting of any server
	// Postfix hands mail to, or Postfix sees a loop. Default mx.postfix.test.
	Hostname string
	// Main are further main.cf lines ("relayhost = [127.0.0.1]:2526"); a
	// parameter given here overrides the base one.
	Main []string
	// Master are further master.cf lines.
	Master []string
}

// Instance is a running Postfix.
type Instance struct {
	Dir, ConfDir, QueueDir, LogFile string
	SMTPAddr                        string
	cmd                             *exec.Cmd
	done                            chan error
	master                          int // the master's pid, the leader of its daemons' process group
}

// baseMain is the main.cf every instance starts from: loopback only, no DNS
// (every next hop is given by address), nothing delivered locally, the
// log in a file (there is no syslog in a container), Postfix 3.6 defaults.
const baseMain = `compatibility_level = 3.6
queue_directory = {{spool}}
data_directory = {{data}}
mail_owner = postfix
setgid_group = postdrop
myhostname = {{hostname}}
mydomain = postfix.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
biff = no
maillog_file_prefixes = {{dir}}
maillog_file = {{log}}
`

// baseMaster is Debian's master.cf without chroot (the instance's folders
// lie outside any chroot) and without the pipes to other programs; the smtpd
// listens on the instance's own address.
const baseMaster = `{{smtp}} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// Start writes the configuration and starts the instance; it returns once
// its smtpd answers with a greeting.
func Start(c Config) (*Instance, error) {
	if _, err := exec.LookPath("postfix"); err != nil {
		return nil, errors.New("postfix is not installed (apt-get install postfix; scripts/test-deps.sh does)")
	}
	pu, err := user.Lookup("postfix")
	if err != nil {
		return nil, fmt.Errorf("no postfix user (is the postfix package installed?): %w", err)
	}
	if c.SMTPAddr == "" {
		if c.SMTPAddr, err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	if c.Hostname == "" {
		c.Hostname = "mx.postfix.test"
	}
	if err := reachable(c.Dir); err != nil {
		return nil, err
	}
	in := &Instance{Dir: c.Dir, ConfDir: filepath.Join(c.Dir, "etc"), QueueDir: filepath.Join(c.Dir, "spool"),
		LogFile: filepath.Join(c.Dir, "postfix.log"), SMTPAddr: c.SMTPAddr}
	data := filepath.Join(c.Dir, "data")
	for _, d := range []string{in.ConfDir, in.QueueDir, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	uid, _ := strconv.Atoi(pu.Uid)
	gid, _ := strconv.Atoi(pu.Gid)
	if err := os.Chown(data, uid, gid); err != nil {
		return nil, err
	}
	// The log file is written by postlogd, which runs as the mail owner.
	if err := os.WriteFile(in.LogFile, nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.Chown(in.LogFile, uid, gid); err != nil {
		return nil, err
	}
	r := strings.NewReplacer("{{spool}}", in.QueueDir, "{{data}}", data, "{{hostname}}", c.Hostname,
		"{{dir}}", c.Dir, "{{log}}", in.LogFile, "{{smtp}}", c.SMTPAddr)
	main := mergeMain(r.Replace(baseMain), c.Main)
	master := r.Replace(baseMaster) + strings.Join(c.Master, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(in.ConfDir, "main.cf"), []byte(main), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(in.ConfDir, "master.cf"), []byte(master), 0o644); err != nil {
		return nil, err
	}
	// postfix check creates the queue folders with their owners and modes
	// and says what is wrong with the configuration; without syslog it
	// writes its complaints only to a terminal, so they are read from the
	// log file or reported as its exit status.
	if out, err := exec.Command("postfix", "-c", in.ConfDir, "check").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("postfix check: %v %s%s", err, out, in.tail())
	}
	// start-fg keeps the master in the foreground as this process's child:
	// it is stopped and reaped here, whatever happens to the caller
	// (Pdeathsig), and leaves no daemon behind.
	in.cmd = exec.Command("postfix", "-c", in.ConfDir, "start-fg")
	lf, err := os.OpenFile(filepath.Join(c.Dir, "master.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	in.cmd.Stdout, in.cmd.Stderr = lf, lf
	in.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := in.cmd.Start(); err != nil {
		return nil, fmt.Errorf("postfix start-fg: %w", err)
	}
	in.done = make(chan error, 1)
	go func() { in.done <- in.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if greets(c.SMTPAddr) {
			in.master = readPid(filepath.Join(in.QueueDir, "pid", "master.pid"))
			return in, nil
		}
		select {
		case err := <-in.done:
			in.done <- err
			return nil, fmt.Errorf("postfix exited at start (%v)%s", err, in.tail())
		default:
		}
		if time.Now().After(deadline) {
			in.Stop()
			return nil, fmt.Errorf("postfix does not answer on %s after 30 s%s", c.SMTPAddr, in.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reachable checks that the folders above dir let others through: the
// daemons run as postfix, and Go's t.TempDir and os.MkdirTemp make 0700
// folders.
func reachable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("postfix: the postfix user cannot reach %s through %s (mode %v); chmod o+x it", dir, d, fi.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// mergeMain appends extra to base, dropping the base lines of the
// parameters extra sets (Postfix would take the last one anyway; this keeps
// the file readable).
func mergeMain(base string, extra []string) string {
	set := map[string]bool{}
	for _, l := range extra {
		if k, _, ok := strings.Cut(l, "="); ok {
			set[strings.TrimSpace(k)] = true
		}
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(base, "\n") {
		if k, _, ok := strings.Cut(l, "="); ok && set[strings.TrimSpace(k)] {
			continue
		}
		b.WriteString(l)
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// greets reports whether an SMTP server at addr sends a 220 greeting.
func greets(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	n, _ := c.Read(buf)
	return n >= 3 && string(buf[:3]) == "220"
}

// Stop stops the instance (postfix stop; its processes killed if it has not
// ended within 10 s), waits for it, and kills what is left of the master's
// process group (a daemon the master did not take down). It is safe to call
// twice.
func (in *Instance) Stop() error {
	if in.cmd == nil || in.cmd.Process == nil {
		return nil
	}
	select {
	case err := <-in.done:
		in.done <- err
		return nil
	default:
	}
	exec.Command("postfix", "-c", in.ConfDir, "stop").Run()
	select {
	case err := <-in.done:
		in.done <- err
	case <-time.After(10 * time.Second):
		in.killAll()
		err := <-in.done
		in.done <- err
	}
	in.killAll()
	return nil
}

// killAll kills the postfix command's process group (postfix-script) and
// the master's: the master makes a session of its own (setsid), which its
// daemons share.
func (in *Instance) killAll() {
	syscall.Kill(-in.cmd.Process.Pid, syscall.SIGKILL)
	if in.master > 1 {
		syscall.Kill(-in.master, syscall.SIGKILL)
	}
}

// MasterPid is the pid of the instance's master (0 if unknown).
func (in *Instance) MasterPid() int { return in.master }

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// Queued counts the messages in the instance's queue: received (incoming,
// maildrop), being delivered (active), waiting for a retry (deferred) or
// held.
func (in *Instance) Queued() (total, deferred int, err error) {
	for _, q := range []string{"maildrop", "incoming", "active", "deferred", "hold"} {
		n := 0
		err := filepath.WalkDir(filepath.Join(in.QueueDir, q), func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.Type().IsRegular() {
				n++
			}
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
		total += n
		if q == "deferred" {
			deferred = n
		}
	}
	return total, deferred, nil
}

// WaitEmpty waits until the queue is empty and returns when it was seen
// empty; deferred mail, which would wait for a retry, fails at once.
func (in *Instance) WaitEmpty(timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, def, err := in.Queued()
		now := time.Now()
		switch {
		case err != nil:
			return now, err
		case def > 0:
			return now, fmt.Errorf("%d message(s) deferred%s", def, in.tail())
		case n == 0:
			return now, nil
		case now.After(deadline):
			return now, fmt.Errorf("%d message(s) still queued after %s%s", n, timeout, in.tail())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Pid is the process id of the root of the instance's processes: the
// postfix command (postfix-script), whose child is the master.
func (in *Instance) Pid() int { return in.cmd.Process.Pid }

// Log returns the instance's log.
func (in *Instance) Log() string {
	b, _ := os.ReadFile(in.LogFile)
	return string(b)
}

// tail returns the end of the log, for error messages.
func (in *Instance) tail() string {
	b, _ := os.ReadFile(in.LogFile)
	if m, _ := os.ReadFile(filepath.Join(in.Dir, "master.out")); len(m) > 0 {
		b = append(b, m...)
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	return "\n--- postfix log ---\n" + string(b)
}

// FreeAddr returns an address of 127.0.0.1 with a port free at the moment:
// Postfix cannot be told to pick one and say which.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// OpenTempDir returns t.TempDir() made searchable by others, as Postfix's
// daemons (user postfix) need.
func OpenTempDir(t testing.TB) string {
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// RelayHost is the relayhost setting that sends all mail to the SMTP
// server at addr (HOST:PORT), without an MX lookup: "[HOST]:PORT".
func RelayHost(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return "relayhost = [" + host + "]:" + port
}
