package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a server under test, started by the harness.
type proc struct {
	name string
	cmd  *exec.Cmd
	addr map[string]string // listener name -> address ("imap", "pop3", "web")
	pid  func() int        // the root of the process tree to measure
	stop func() error
}

// startListing starts cmd and waits for its "listening NAME ADDR" lines and
// "ready" on stdout (the convention of postern serve, followed by the null
// server). stderr goes to logFile.
func startListing(name string, cmd *exec.Cmd, logFile string) (*proc, error) {
	lf, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = lf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	// Its own process group (a tree to measure and to kill), and SIGTERM
	// should the harness die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, addr: map[string]string{}}
	p.pid = func() int { return cmd.Process.Pid }
	p.stop = func() error { return stopProcess(cmd, lf) }
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 3 && f[0] == "listening":
				p.addr[f[1]] = f[2]
			case len(f) == 1 && f[0] == "ready" && !sent:
				sent = true
				ready <- nil
			}
		}
		if !sent {
			ready <- errors.New("exited before ready")
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("%s %w; see %s", name, err, logFile)
		}
	case <-time.After(2 * time.Minute):
		p.stop()
		return nil, fmt.Errorf("%s not ready after 2 minutes; see %s", name, logFile)
	}
	return p, nil
}

// memory of a process tree.
type memory struct {
	RSS   int64 // sum of VmRSS of every process, bytes (shared pages count once per process)
	PSS   int64 // sum of proportional set sizes: shared pages split between their users
	Procs int
}

// stopProcess asks cmd to stop, kills its process group after 20 s, and
// closes its log file.
func stopProcess(cmd *exec.Cmd, log io.Closer) error {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	log.Close()
	return nil
}

// treeMemory sums the memory of root and all its descendants.
func treeMemory(root int) memory {
	var m memory
	for _, pid := range append([]int{root}, descendants(root)...) {
		m.Procs++
		m.RSS += statusField(pid, "VmRSS:")
		m.PSS += rollupField(pid, "Pss:")
	}
	return m
}

// statusField reads a "kB" field of /proc/PID/status, in bytes.
func statusField(pid int, key string) int64 { return kbField(fmt.Sprintf("/proc/%d/status", pid), key) }

func rollupField(pid int, key string) int64 {
	return kbField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), key)
}

func kbField(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			f := strings.Fields(l[len(key):])
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}

// peakSampler samples the RSS of a process tree every 50 ms until stopped
// and returns the highest.
func peakSampler(root int) (stop func() memory) {
	done := make(chan struct{})
	res := make(chan memory, 1)
	go func() {
		var peak memory
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			m := treeMemory(root)
			if m.RSS > peak.RSS {
				peak = m
			}
			select {
			case <-done:
				res <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() memory { close(done); return <-res }
}

// treeCPU returns the CPU time used so far by root, its live descendants
// and the children it has reaped (Dovecot's master reaps its login and
// imap processes), from /proc/PID/stat in clock ticks (USER_HZ, 100 on Linux).
func treeCPU(root int) time.Duration {
	var ticks int64
	seen := map[int]bool{}
	var walk func(pid int, self bool)
	walk = func(pid int, self bool) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			return
		}
		f := strings.Fields(s[i+1:])
		// After ")": state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
		if len(f) < 15 {
			return
		}
		for k := 11; k <= 14; k++ {
			v, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += v
		}
	}
	walk(root, true)
	for _, c := range descendants(root) {
		walk(c, false)
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// machineCPU returns the CPU time the whole machine has spent working so
// far (user, nice, system, irq and softirq of every CPU, from /proc/stat's
// first line, in USER_HZ ticks): over a stress run it takes in the server,
// its database and the load generator, which share the CPUs.
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, k := range []int{1, 2, 3, 6, 7} {
		v, _ := strconv.ParseInt(f[k], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// descendants lists the live descendants of root.
func descendants(root int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(root)
	return out
}

// waitLog waits until the log file holds a line containing text.
func waitLog(file, text string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(file)
		if err == nil && strings.Contains(string(b), text) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %q in %s after %s", text, file, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
